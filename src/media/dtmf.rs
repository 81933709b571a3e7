//! RFC 4733 telephone-event reception: one digit per event, however many packets carry it.

/// A decoded telephone-event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub code: u8,
    pub end: bool,
    pub duration: u16,
}

/// Parses the 4-byte event payload.
pub fn parse(payload: &[u8]) -> Option<Event> {
    if payload.len() < 4 {
        return None;
    }
    Some(Event {
        code: payload[0],
        end: payload[1] & 0x80 != 0,
        duration: u16::from_be_bytes([payload[2], payload[3]]),
    })
}

/// The keypad character for an event code (0–9, *, #, A–D).
pub fn digit(code: u8) -> Option<char> {
    Some(match code {
        0..=9 => (b'0' + code) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + code - 12) as char,
        _ => return None,
    })
}

/// A digit sent as SIP INFO (`application/dtmf-relay` "Signal=5", or `application/dtmf` "5"),
/// which some phones use instead of RFC 4733.
pub fn from_sip_info(content_type: &str, body: &[u8]) -> Option<char> {
    let mime = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let value = match mime.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then_some(v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    let mut chars = value.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
}

/// Turns a packet stream into digits. An event is identified by its RTP timestamp (§2.5.1.3), so
/// repeated and retransmitted end packets yield one digit.
#[derive(Default, Debug)]
pub struct Detector {
    last_ts: Option<u32>,
}

impl Detector {
    /// Feeds one telephone-event packet; returns a digit when a new event starts.
    pub fn feed(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = parse(payload)?;
        if self.last_ts == Some(rtp_timestamp) {
            return None;
        }
        self.last_ts = Some(rtp_timestamp);
        digit(ev.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_digits() {
        assert_eq!(
            from_sip_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            from_sip_info("application/dtmf-relay", b"Signal= #\r\n"),
            Some('#')
        );
        assert_eq!(from_sip_info("application/dtmf", b"9"), Some('9'));
        assert_eq!(from_sip_info("application/dtmf", b"99"), None);
        assert_eq!(from_sip_info("text/plain", b"5"), None);
    }

    #[test]
    fn one_digit_per_event() {
        let mut d = Detector::default();
        assert_eq!(d.feed(100, &[1, 10, 0, 160]), Some('1'));
        assert_eq!(d.feed(100, &[1, 10, 1, 64]), None);
        assert_eq!(d.feed(100, &[1, 0x8a, 3, 32]), None);
        assert_eq!(d.feed(100, &[1, 0x8a, 3, 32]), None);
        assert_eq!(d.feed(900, &[11, 0x0a, 0, 160]), Some('#'));
        assert_eq!(d.feed(1700, &[1]), None);
    }
}
