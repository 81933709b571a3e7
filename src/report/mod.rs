//! Reports for marketers and supervisors: campaign attribution (which calls each SMS campaign
//! produced, from one company number) as a table, CSV, JSON and SVG charts. Reads through the
//! store; writes nothing.

pub mod campaigns;
pub mod queues;
pub mod svg;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] crate::context::StoreError),
    #[error("format '{0}': use table, csv or json")]
    Format(String),
    #[error("period: {0}")]
    Period(String),
}

/// Output formats of `acd report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Format, ReportError> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(ReportError::Format(other.to_string())),
        }
    }
}

/// `[since, until)` from optional ISO-8601 bounds: by default the last 30 days up to now.
pub fn period(
    since: Option<&str>,
    until: Option<&str>,
    now: i64,
) -> Result<(i64, i64), ReportError> {
    let parse = |s: &str| {
        crate::context::time::parse_iso8601(s).ok_or_else(|| {
            ReportError::Period(format!(
                "'{s}' is not a date (2026-11-01 or 2026-11-01T09:00:00Z)"
            ))
        })
    };
    let until = until.map(parse).transpose()?.unwrap_or(now + 1);
    let since = since.map(parse).transpose()?.unwrap_or(until - 30 * 86_400);
    if since >= until {
        return Err(ReportError::Period("since must be before until".into()));
    }
    Ok((since, until))
}
