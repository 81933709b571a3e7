//! Caller numbers to E.164 (`+` and 8–15 digits), from what phones and trunks actually send:
//! `+1 (555) 123-4567`, `5551234567`, `15551234567`, `011 44 20…`, Russian `8 903 …` and
//! `007 …`, and `tel:`/`sip:` user parts. The default country says what a national number means.

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

/// How one country writes numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Country {
    pub iso: &'static str,
    /// Country calling code.
    pub code: &'static str,
    /// Dialled before a national number inside the country ("0", "8", "1"), if any.
    pub trunk: &'static str,
    /// Dialled before a country code to call abroad.
    pub international: &'static [&'static str],
    /// Digits of a national significant number.
    pub national_len: (usize, usize),
}

/// Countries we know the dialling rules of; extend as customers need.
pub const COUNTRIES: &[Country] = &[
    Country {
        iso: "US",
        code: "1",
        trunk: "1",
        international: &["011", "00"],
        national_len: (10, 10),
    },
    Country {
        iso: "CA",
        code: "1",
        trunk: "1",
        international: &["011", "00"],
        national_len: (10, 10),
    },
    Country {
        iso: "RU",
        code: "7",
        trunk: "8",
        international: &["810", "00"],
        national_len: (10, 10),
    },
    Country {
        iso: "KZ",
        code: "7",
        trunk: "8",
        international: &["810", "00"],
        national_len: (10, 10),
    },
    Country {
        iso: "GB",
        code: "44",
        trunk: "0",
        international: &["00"],
        national_len: (9, 10),
    },
    Country {
        iso: "DE",
        code: "49",
        trunk: "0",
        international: &["00"],
        national_len: (6, 13),
    },
    Country {
        iso: "FR",
        code: "33",
        trunk: "0",
        international: &["00"],
        national_len: (9, 9),
    },
    Country {
        iso: "ES",
        code: "34",
        trunk: "",
        international: &["00"],
        national_len: (9, 9),
    },
    Country {
        iso: "IT",
        code: "39",
        trunk: "",
        international: &["00"],
        national_len: (6, 11),
    },
    Country {
        iso: "NL",
        code: "31",
        trunk: "0",
        international: &["00"],
        national_len: (9, 9),
    },
    Country {
        iso: "IN",
        code: "91",
        trunk: "0",
        international: &["00"],
        national_len: (10, 10),
    },
    Country {
        iso: "AU",
        code: "61",
        trunk: "0",
        international: &["0011"],
        national_len: (9, 9),
    },
    Country {
        iso: "BR",
        code: "55",
        trunk: "0",
        international: &["00"],
        national_len: (10, 11),
    },
];

impl Country {
    pub fn by_iso(iso: &str) -> Result<&'static Country, E164Error> {
        COUNTRIES
            .iter()
            .find(|c| c.iso.eq_ignore_ascii_case(iso))
            .ok_or_else(|| {
                let known: Vec<&str> = COUNTRIES.iter().map(|c| c.iso).collect();
                E164Error::UnknownCountry(iso.to_string(), known.join(", "))
            })
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
    let e164 = |d: &str| -> Result<String, E164Error> {
        if (8..=15).contains(&d.len()) {
            Ok(format!("+{d}"))
        } else {
            Err(E164Error::Length(raw.to_string(), d.len()))
        }
    };
    if plus {
        return e164(&digits);
    }
    // Longest international prefix first ("0011" before "00", "810" before "8").
    let mut intl: Vec<&str> = country.international.to_vec();
    intl.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in intl {
        if let Some(rest) = digits.strip_prefix(p) {
            if rest.len() >= 8 {
                return e164(rest);
            }
        }
    }
    let (lo, hi) = country.national_len;
    if !country.trunk.is_empty() {
        if let Some(rest) = digits.strip_prefix(country.trunk) {
            if (lo..=hi).contains(&rest.len()) {
                return e164(&format!("{}{rest}", country.code));
            }
        }
    }
    if (lo..=hi).contains(&digits.len()) {
        return e164(&format!("{}{digits}", country.code));
    }
    if let Some(rest) = digits.strip_prefix(country.code) {
        if (lo..=hi).contains(&rest.len()) {
            return e164(&digits);
        }
    }
    Err(E164Error::Length(raw.to_string(), digits.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str, iso: &str) -> Result<String, E164Error> {
        normalize(raw, Country::by_iso(iso).unwrap())
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
