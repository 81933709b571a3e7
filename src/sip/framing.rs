//! Cutting a TCP byte stream into SIP messages (RFC 3261 §18.3) and answering RFC 5626 keep-alives.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// A stream we cannot frame any more: the connection must be closed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("message exceeds {0} bytes")]
    TooLarge(usize),
    #[error("missing, negative, duplicated or malformed Content-Length")]
    BadContentLength,
}

/// What came out of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (head and body).
    Message(Bytes),
    /// A double-CRLF ping; answer with a single CRLF pong.
    Ping,
}

/// Accumulates stream bytes and yields whole messages.
pub struct StreamFramer {
    buf: BytesMut,
    max: usize,
}

impl StreamFramer {
    pub fn new(max_message: usize) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            max: max_message,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.advance(4);
            return Ok(Some(Frame::Ping));
        }
        let lead = self
            .buf
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(self.buf.len());
        if lead == self.buf.len() {
            // Only CRLFs so far: keep up to 3 of them waiting for a possible ping.
            if self.buf.len() >= 4 {
                self.buf.advance(self.buf.len() - 3);
            }
            return Ok(None);
        }
        self.buf.advance(lead);
        // The same end-of-header rule as datagrams (a bare-LF blank line counts too), so a
        // message is answered the same on UDP and TCP.
        let Some((head_end, body_start)) = super::msg::head_end(&self.buf) else {
            if self.buf.len() > self.max {
                return Err(FramingError::TooLarge(self.max));
            }
            return Ok(None);
        };
        let body_len = content_length(&self.buf[..head_end])?;
        let total = body_start + body_len;
        if total > self.max {
            return Err(FramingError::TooLarge(self.max));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }
}

/// Reads Content-Length (or `l`) from a raw header block; absent means 0.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found = None;
    for line in head.split(|&c| c == b'\n') {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            if found.is_some() {
                return Err(FramingError::BadContentLength);
            }
            let v = std::str::from_utf8(line[colon + 1..].trim_ascii())
                .map_err(|_| FramingError::BadContentLength)?;
            found = Some(
                v.parse::<usize>()
                    .map_err(|_| FramingError::BadContentLength)?,
            );
        }
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_joined_messages() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";
        let mut f = StreamFramer::new(65535);
        f.push(&m[..10]);
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(&m[10..]);
        f.push(b"\r\n\r\n");
        f.push(m);
        assert_eq!(
            f.next_frame().unwrap(),
            Some(Frame::Message(Bytes::from_static(m)))
        );
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        assert_eq!(
            f.next_frame().unwrap(),
            Some(Frame::Message(Bytes::from_static(m)))
        );
        assert_eq!(f.next_frame().unwrap(), None);
    }

    #[test]
    fn a_bare_lf_blank_line_ends_the_header_as_on_udp() {
        let mut f = StreamFramer::new(1000);
        f.push(b"OPTIONS sip:a SIP/2.0\nContent-Length: 2\n\nokNEXT");
        match f.next_frame() {
            Ok(Some(Frame::Message(m))) => {
                assert_eq!(&m[..], b"OPTIONS sip:a SIP/2.0\nContent-Length: 2\n\nok")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn negative_or_double_length_closes() {
        let mut f = StreamFramer::new(65535);
        f.push(b"INVITE sip:a SIP/2.0\r\nContent-Length: -999\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::BadContentLength));
        let mut f = StreamFramer::new(65535);
        f.push(b"INVITE sip:a SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::BadContentLength));
    }

    #[test]
    fn oversize_closes() {
        let mut f = StreamFramer::new(100);
        f.push(&[b'a'; 200]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge(100)));
    }
}
