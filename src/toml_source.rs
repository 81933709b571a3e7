//! Reading TOML that people write (acd.toml, dialplans): every error names the line, so both the
//! config and the dialplan loaders report `file:line: what`.

use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads a file people edit; returns its text and the name to use in messages, or that name
/// with the I/O error.
pub fn read(path: &Path) -> Result<(String, String), (String, std::io::Error)> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, file)),
        Err(e) => Err((file, e)),
    }
}

/// Deserialises `text`; on error returns the 1-based line of the offending span and the message.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, (usize, String)> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        (line, e.message().to_string())
    })
}

/// The 1-based line of the first occurrence of `needle` (1 if absent), for semantic errors found
/// after deserialising, when serde no longer knows where a value came from.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i + 1)
}

/// The 1-based line of the first `needle` at or after byte `from` (a table's start, from a
/// `toml::Spanned`), else the line `from` is on: where a value of that table came from.
pub fn line_after(text: &str, from: usize, needle: &str) -> usize {
    let from = from.min(text.len());
    let from = (0..=from)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let at = text[from..].find(needle).map_or(from, |i| from + i);
    text[..at].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_one_based_and_exact() {
        let e = super::parse::<toml::Table>("a = 1\nb = \n").unwrap_err();
        assert_eq!(e.0, 2);
        assert_eq!(super::line_of("x\ny = 1\n", "y ="), 2);
        assert_eq!(super::line_of("x\n", "nope"), 1);
        let t = "a = 1\n[[q]]\nname = \"x\"\n[[q]]\nname = \"y\"\n";
        assert_eq!(
            super::line_after(t, t.find("[[q]]\nname = \"y").unwrap(), "name"),
            5
        );
        assert_eq!(super::line_after(t, 6, "nope"), 2);
    }
}
