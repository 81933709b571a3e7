//! Caller numbers to E.164 (`+` and 8–15 digits), from what phones and trunks actually send:
//! `+1 (555) 123-4567`, `5551234567`, `15551234567`, `011 44 20…`, Russian `8 903 …` and
//! `007 …`, and `tel:`/`sip:` user parts. The default country says what a national number
//! means, with every country's trunk and international prefixes from libphonenumber's
//! metadata (the `phonenumber` crate), not a table of our own.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum E164Error {
    #[error("'{0}' is not a phone number")]
    NotANumber(String),
    #[error("'{0}' has {1} digits; E.164 numbers have 8 to 15")]
    Length(String, usize),
    #[error("unknown country '{0}' (known: {1})")]
    UnknownCountry(String, String),
}

/// The country whose dialling rules say what a number without `+` means (trunk prefix,
/// international prefixes, national number lengths): every country libphonenumber knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Country {
    id: phonenumber::country::Id,
    /// Its country calling code (`1`, `44`, `7`).
    code: u16,
}

impl Country {
    /// The country with ISO 3166-1 alpha-2 code `iso` (`US`, `GB`, `DE`, `RU`, …).
    pub fn by_iso(iso: &str) -> Result<Country, E164Error> {
        let id = iso
            .trim()
            .to_ascii_uppercase()
            .parse::<phonenumber::country::Id>()
            .map_err(|_| {
                E164Error::UnknownCountry(
                    iso.to_string(),
                    "any ISO 3166-1 alpha-2 code, e.g. US, GB, DE".into(),
                )
            })?;
        // An id without dialling metadata would parse every number as unknown.
        let code = phonenumber::metadata::DATABASE
            .by_id(id.as_ref())
            .map(|m| m.country_code())
            .ok_or_else(|| {
                E164Error::UnknownCountry(iso.to_string(), "a country with dialling rules".into())
            })?;
        Ok(Country { id, code })
    }

    /// Its country calling code, without `+`.
    pub fn code(&self) -> String {
        self.code.to_string()
    }

    /// Its ISO code.
    pub fn iso(&self) -> &str {
        self.id.as_ref()
    }

    /// Reads a number of each kind once, so the patterns libphonenumber compiles on first use
    /// are ready before the first caller (who would otherwise wait for them inside their
    /// context lookup's budget: tens of milliseconds in a debug build).
    pub fn warm_up(&self) {
        let _ = normalize("+1 555 123 4567", self);
        let _ = normalize("555 123 4567", self);
        let _ = normalize("00 44 20 7946 0958", self);
    }
}

/// The number part of `tel:`/`sip:` URIs or a plain string, without visual separators.
fn digits_of(raw: &str) -> Result<(bool, String), E164Error> {
    let mut s = raw.trim();
    for scheme in ["tel:", "sip:", "sips:"] {
        // `get`, not indexing: the caller's From user may put a multi-byte character across
        // the prefix's end (found by fuzzing; it used to panic the core on a lookup).
        if s.get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            s = &s[scheme.len()..];
        }
    }
    let s = s.split(['@', ';']).next().unwrap_or("");
    let plus = s.starts_with('+');
    let mut digits = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return Err(E164Error::NotANumber(raw.to_string())),
        }
    }
    if digits.is_empty() {
        return Err(E164Error::NotANumber(raw.to_string()));
    }
    Ok((plus, digits))
}

/// Normalises `raw` to E.164 using `country`'s dialling rules for numbers without `+`.
pub fn normalize(raw: &str, country: &Country) -> Result<String, E164Error> {
    let (plus, digits) = digits_of(raw)?;
    // `+` and the digits is already E.164, and what trunks and phones send almost always (a
    // profile under load had libphonenumber at 2.7 % of acd's CPU for exactly these). Written
    // forms with a `(0)` or other grouping still go through the rules.
    if plus && !raw.contains('(') {
        return if (8..=15).contains(&digits.len()) {
            Ok(format!("+{digits}"))
        } else {
            Err(E164Error::Length(raw.to_string(), digits.len()))
        };
    }
    let parsed = if plus {
        phonenumber::parse(None, format!("+{digits}"))
    } else {
        phonenumber::parse(Some(country.id), &digits)
    };
    // "00" is how most of the world dials abroad from a mobile, even where the official
    // prefix is another (Russia: 8~10): taken when it makes a valid number and the country's
    // own reading does not.
    let parsed = match (parsed, digits.strip_prefix("00")) {
        (Ok(n), Some(rest)) if !plus && !phonenumber::is_valid(&n) => {
            match phonenumber::parse(None, format!("+{rest}")) {
                Ok(abroad) if phonenumber::is_valid(&abroad) => Ok(abroad),
                _ => Ok(n),
            }
        }
        (parsed, _) => parsed,
    };
    let Ok(n) = parsed else {
        return Err(E164Error::Length(raw.to_string(), digits.len()));
    };
    let e164 = n.format().mode(phonenumber::Mode::E164).to_string();
    let len = e164.len().saturating_sub(1);
    // A short code or an extension (`1001`) is no E.164 number, whatever the country adds.
    if !(8..=15).contains(&len) || digits.len() < 7 {
        return Err(E164Error::Length(raw.to_string(), digits.len()));
    }
    Ok(e164)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str, iso: &str) -> Result<String, E164Error> {
        normalize(raw, &Country::by_iso(iso).unwrap())
    }

    #[test]
    fn north_american_forms() {
        for raw in [
            "+15551234567",
            "+1 (555) 123-4567",
            "5551234567",
            "1-555-123-4567",
            "555.123.4567",
            "011 1 555 123 4567",
            "tel:+1-555-123-4567;phone-context=example.com",
            "sip:+15551234567@carrier.example;user=phone",
        ] {
            assert_eq!(n(raw, "US").as_deref(), Ok("+15551234567"), "{raw}");
        }
    }

    #[test]
    fn russian_trunk_and_international_prefixes() {
        for raw in [
            "+79031234567",
            "89031234567",
            "8 (903) 123-45-67",
            "0079031234567",
            "81079031234567",
            "9031234567",
            "79031234567",
        ] {
            assert_eq!(n(raw, "RU").as_deref(), Ok("+79031234567"), "{raw}");
        }
    }

    #[test]
    fn european_national_formats() {
        assert_eq!(n("020 7946 0958", "GB").as_deref(), Ok("+442079460958"));
        assert_eq!(n("0044 20 7946 0958", "GB").as_deref(), Ok("+442079460958"));
        assert_eq!(n("030 1234567", "DE").as_deref(), Ok("+49301234567"));
        assert_eq!(n("01 23 45 67 89", "FR").as_deref(), Ok("+33123456789"));
        // A foreign number dialled from another country keeps its own code.
        assert_eq!(n("00 7 903 123 45 67", "DE").as_deref(), Ok("+79031234567"));
    }

    /// Countries the old hand-written table did not know: their own trunk and international
    /// prefixes come from libphonenumber's metadata.
    #[test]
    fn every_country_s_own_rules() {
        assert_eq!(n("0412 345 678", "AU").as_deref(), Ok("+61412345678"));
        assert_eq!(
            n("0011 44 20 7946 0958", "AU").as_deref(),
            Ok("+442079460958")
        );
        assert_eq!(n("09876 543210", "IN").as_deref(), Ok("+919876543210"));
        assert_eq!(n("03-1234-5678", "JP").as_deref(), Ok("+81312345678"));
        assert_eq!(
            n("010 44 20 7946 0958", "JP").as_deref(),
            Ok("+442079460958")
        );
        assert_eq!(
            Country::by_iso("au").map(|c| c.code()),
            Ok("61".to_string())
        );
    }

    #[test]
    fn not_numbers_and_wrong_lengths_are_errors() {
        assert_eq!(n("alice", "US"), Err(E164Error::NotANumber("alice".into())));
        // A multi-byte character across the end of where "sips:" would be (a caller's From).
        assert_eq!(n("abcч1", "US"), Err(E164Error::NotANumber("abcч1".into())));
        assert_eq!(n("sipч", "US"), Err(E164Error::NotANumber("sipч".into())));
        assert_eq!(
            n("sip:anonymous@anonymous.invalid", "US"),
            Err(E164Error::NotANumber(
                "sip:anonymous@anonymous.invalid".into()
            ))
        );
        assert!(
            matches!(n("1001", "US"), Err(E164Error::Length(_, 4))),
            "an extension is not E.164"
        );
        assert!(matches!(
            n("+1234567890123456", "US"),
            Err(E164Error::Length(_, 16))
        ));
        assert!(matches!(
            Country::by_iso("XX"),
            Err(E164Error::UnknownCountry(_, _))
        ));
    }
}
