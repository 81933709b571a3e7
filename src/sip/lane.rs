//! Which queue a received message waits in when the core is busy (overload control, RFC 7339's
//! reasoning without its signalling): work for calls already in progress must never wait behind
//! a flood of new requests.
//!
//! The readers classify raw bytes before anything is parsed, so this looks at as little as it
//! can: the start line and the To header. A message that lies (a new INVITE with a made-up To
//! tag) only buys itself a place in the dialog lane, where the per-source budgets still count it
//! and the core answers it 481 at the cost of one parse.

/// The two queues SIP input waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Responses, ACK, CANCEL and requests inside a dialog (To carries a tag): they finish or
    /// end calls already in progress.
    Dialog,
    /// Everything that would start new work: out-of-dialog INVITE, REGISTER, OPTIONS, and
    /// whatever cannot be classified. Shed first under overload.
    Fresh,
}

/// How far into a message the To header is looked for.
const SCAN: usize = 8192;

/// Classifies one received message.
pub fn lane(data: &[u8]) -> Lane {
    let data = &data[..data.len().min(SCAN)];
    let start = data
        .iter()
        .position(|&c| c != b'\r' && c != b'\n')
        .unwrap_or(data.len());
    let mut lines = data[start..].split(|&c| c == b'\n');
    let Some(first) = lines.next() else {
        return Lane::Fresh;
    };
    if first.starts_with(b"SIP/") {
        return Lane::Dialog;
    }
    let method = first.split(|&c| c == b' ').next().unwrap_or(b"");
    if method == b"ACK" || method == b"CANCEL" {
        return Lane::Dialog;
    }
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t") {
            return if has_tag(&line[colon + 1..]) {
                Lane::Dialog
            } else {
                Lane::Fresh
            };
        }
    }
    Lane::Fresh
}

/// Whether a To value carries a `tag` parameter outside its `<...>` URI.
fn has_tag(value: &[u8]) -> bool {
    let params = match value.iter().rposition(|&c| c == b'>') {
        Some(end) => &value[end + 1..],
        None => value,
    };
    params.split(|&c| c == b';').skip(1).any(|p| {
        let p = p.trim_ascii();
        p.len() > 3
            && p[..3].eq_ignore_ascii_case(b"tag")
            && p[3..].trim_ascii_start().first() == Some(&b'=')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, to: &str) -> Vec<u8> {
        format!(
            "{method} sip:100@acd SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n\
             From: <sip:a@b>;tag=1\r\n{to}\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn new_requests_are_fresh() {
        assert_eq!(lane(&req("INVITE", "To: <sip:100@acd>")), Lane::Fresh);
        assert_eq!(lane(&req("REGISTER", "t: sip:100@acd")), Lane::Fresh);
        assert_eq!(
            lane(&req("OPTIONS", "To: <sip:100@acd;tag=x>")),
            Lane::Fresh
        );
    }

    #[test]
    fn dialog_work_is_dialog() {
        assert_eq!(lane(&req("BYE", "To: <sip:100@acd>;tag=abc")), Lane::Dialog);
        assert_eq!(
            lane(&req("INVITE", "to: sip:100@acd ; TAG = abc")),
            Lane::Dialog
        );
        assert_eq!(lane(&req("CANCEL", "To: <sip:100@acd>")), Lane::Dialog);
        assert_eq!(lane(&req("ACK", "To: <sip:100@acd>")), Lane::Dialog);
        assert_eq!(lane(b"SIP/2.0 200 OK\r\n\r\n"), Lane::Dialog);
        assert_eq!(lane(b"\r\n\r\nSIP/2.0 180 Ringing\r\n\r\n"), Lane::Dialog);
    }

    #[test]
    fn garbage_is_fresh() {
        assert_eq!(lane(b""), Lane::Fresh);
        assert_eq!(lane(b"\r\n"), Lane::Fresh);
        assert_eq!(lane(&[0xff; 100]), Lane::Fresh);
        assert_eq!(
            lane(b"BYE sip:x SIP/2.0\r\nTo: <sip:x>;tagged\r\n\r\n"),
            Lane::Fresh
        );
        // A To header past the scanned head does not count.
        let mut long = b"BYE sip:x SIP/2.0\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'a', SCAN));
        long.extend(b"\r\nTo: <sip:x>;tag=1\r\n\r\n");
        assert_eq!(lane(&long), Lane::Fresh);
    }
}
