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
