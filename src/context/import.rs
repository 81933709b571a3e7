//! CSV imports of campaign sends, customers and tickets: streamed (a 10-million-line file is never
//! held in memory), written in batches, idempotent (re-importing adds nothing twice), with
//! `--dry-run`, a progress line, and errors that name the line and the column.

use super::e164::{normalize, Country};
use super::records::{Campaign, SendRow, TicketRecord};
use super::time::parse_iso8601;
use super::{Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use thiserror::Error;

/// What kind of rows a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    /// campaign, phone, sent_at (ISO-8601); optional offer, queue, skills, window_minutes.
    Campaigns,
    /// id, name, phones (`;`-separated); optional email, tags (`;`-separated).
    Customers,
    /// id, status; optional subject, skill, phone, customer_id, opened_at (ISO-8601).
    Tickets,
}

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:1: missing column '{column}' (the header has: {header})")]
    MissingColumn {
        file: String,
        column: &'static str,
        header: String,
    },
    #[error("{file}:{line}: {msg}")]
    Csv {
        file: String,
        line: u64,
        msg: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One rejected row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub column: String,
    pub msg: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    /// Rows new to the database (sends); rows written (customers, tickets).
    pub written: u64,
    /// Row errors, the first 100 kept; `errors` counts all of them.
    pub rejected: Vec<RowError>,
    pub errors: u64,
}

const BATCH: usize = 5_000;

/// Column positions by name, case-insensitive.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn get<'r>(&self, rec: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        self.0
            .get(name)
            .and_then(|i| rec.get(*i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// Imports `kind` rows from `input` (named `file` in messages). `progress` is called now and
/// then with the number of bytes read so far.
pub async fn import(
    store: &Store,
    kind: ImportKind,
    file: &str,
    input: impl Read,
    country: &Country,
    dry_run: bool,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = rdr
        .headers()
        .map_err(|e| ImportError::Csv {
            file: file.into(),
            line: 1,
            msg: e.to_string(),
        })?
        .clone();
    let cols = Columns(
        header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
            .collect(),
    );
    let required: &[&'static str] = match kind {
        ImportKind::Campaigns => &["campaign", "phone", "sent_at"],
        ImportKind::Customers => &["id", "name", "phones"],
        ImportKind::Tickets => &["id", "status"],
    };
    for r in required {
        if !cols.0.contains_key(*r) {
            return Err(ImportError::MissingColumn {
                file: file.into(),
                column: r,
                header: header.iter().collect::<Vec<_>>().join(","),
            });
        }
    }
    let mut report = ImportReport::default();
    let mut sends: Vec<SendRow> = Vec::with_capacity(BATCH);
    let mut campaigns_seen: HashSet<String> = HashSet::new();
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(ImportError::Csv {
                    file: file.into(),
                    line,
                    msg: e.to_string(),
                });
            }
        }
        report.rows += 1;
        let line = rec.position().map_or(0, |p| p.line());
        if report.rows % 10_000 == 0 {
            progress(rec.position().map_or(0, |p| p.byte()));
        }
        let mut reject = |column: &str, msg: String| {
            report.errors += 1;
            if report.rejected.len() < 100 {
                report.rejected.push(RowError {
                    line,
                    column: column.to_string(),
                    msg,
                });
            }
        };
        let phone_of = |col: &str, v: &str| {
            normalize(v, country).map_err(|e| (col.to_string(), e.to_string()))
        };
        match kind {
            ImportKind::Campaigns => {
                let (Some(name), Some(raw_phone), Some(raw_at)) = (
                    cols.get(&rec, "campaign"),
                    cols.get(&rec, "phone"),
                    cols.get(&rec, "sent_at"),
                ) else {
                    let missing = ["campaign", "phone", "sent_at"]
                        .into_iter()
                        .find(|c| cols.get(&rec, c).is_none())
                        .unwrap_or("campaign");
                    reject(missing, "empty".into());
                    continue;
                };
                let phone = match phone_of("phone", raw_phone) {
                    Ok(p) => p,
                    Err((c, m)) => {
                        reject(&c, m);
                        continue;
                    }
                };
                let Some(sent_at) = parse_iso8601(raw_at) else {
                    reject("sent_at", format!("'{raw_at}' is not an ISO-8601 time"));
                    continue;
                };
                let window = match cols.get(&rec, "window_minutes").map(str::parse::<i64>) {
                    None => 1440,
                    Some(Ok(w)) if w > 0 => w,
                    Some(_) => {
                        reject(
                            "window_minutes",
                            "must be a positive number of minutes".into(),
                        );
                        continue;
                    }
                };
                if campaigns_seen.insert(name.to_string()) && !dry_run {
                    store
                        .upsert_campaign(&Campaign {
                            name: name.into(),
                            offer: cols.get(&rec, "offer").unwrap_or("").into(),
                            queue: cols.get(&rec, "queue").map(str::to_string),
                            skills: cols.get(&rec, "skills").unwrap_or("").into(),
                            window_minutes: window,
                        })
                        .await?;
                }
                sends.push(SendRow {
                    campaign: name.into(),
                    phone,
                    sent_at,
                });
                if sends.len() >= BATCH {
                    if !dry_run {
                        report.written += store.add_campaign_sends(&sends).await?;
                    }
                    sends.clear();
                }
            }
            ImportKind::Customers => {
                let (Some(id), Some(name), Some(raw_phones)) = (
                    cols.get(&rec, "id"),
                    cols.get(&rec, "name"),
                    cols.get(&rec, "phones"),
                ) else {
                    reject("id", "id, name and phones are required".into());
                    continue;
                };
                let phones: Result<Vec<String>, (String, String)> = raw_phones
                    .split(';')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| phone_of("phones", p))
                    .collect();
                let phones = match phones {
                    Ok(p) => p,
                    Err((c, m)) => {
                        reject(&c, m);
                        continue;
                    }
                };
                let tags: Vec<String> = cols
                    .get(&rec, "tags")
                    .unwrap_or("")
                    .split(';')
                    .map(|t| t.trim().to_ascii_lowercase())
                    .filter(|t| !t.is_empty())
                    .collect();
                if !dry_run {
                    store
                        .upsert_customer(id, name, cols.get(&rec, "email"), &phones, &tags)
                        .await?;
                    report.written += 1;
                }
            }
            ImportKind::Tickets => {
                let (Some(id), Some(status)) = (cols.get(&rec, "id"), cols.get(&rec, "status"))
                else {
                    reject("id", "id and status are required".into());
                    continue;
                };
                let phone = match cols.get(&rec, "phone").map(|p| phone_of("phone", p)) {
                    None => None,
                    Some(Ok(p)) => Some(p),
                    Some(Err((c, m))) => {
                        reject(&c, m);
                        continue;
                    }
                };
                let opened_at = match cols.get(&rec, "opened_at") {
                    None => 0,
                    Some(v) => match parse_iso8601(v) {
                        Some(t) => t,
                        None => {
                            reject("opened_at", format!("'{v}' is not an ISO-8601 time"));
                            continue;
                        }
                    },
                };
                if !dry_run {
                    store
                        .upsert_ticket(&TicketRecord {
                            id: id.into(),
                            phone,
                            customer_id: cols.get(&rec, "customer_id").map(str::to_string),
                            status: status.to_ascii_lowercase(),
                            subject: cols.get(&rec, "subject").unwrap_or("").into(),
                            skill: cols.get(&rec, "skill").map(str::to_string),
                            opened_at,
                        })
                        .await?;
                    report.written += 1;
                }
            }
        }
    }
    if !sends.is_empty() && !dry_run {
        report.written += store.add_campaign_sends(&sends).await?;
    }
    Ok(report)
}
