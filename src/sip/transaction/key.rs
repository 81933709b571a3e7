//! Addresses and transaction keys: where a message goes, and which transaction it belongs to.

use crate::sip::msg::{Request, Response};
use crate::sip::via::{Method, BRANCH_COOKIE};
use bytes::Bytes;
use std::net::SocketAddr;

/// The transport a message came in on or goes out on. Reliable transports skip retransmits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS (RFC 3261 §26.2, `sips:`): a TCP stream, encrypted.
    Tls,
}

impl Transport {
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Where a message goes or came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// Bytes to put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: Peer,
    pub data: Bytes,
}

/// Identifies a transaction: branch (+ sent-by for servers) and method, ACK folded into INVITE
/// (§17.2.3). Server keys also carry Call-ID and CSeq number: a genuine retransmission always
/// repeats them, and a client that reuses a branch for a new request (the RFC 4475 corpus does)
/// then gets a new transaction instead of someone else's cached answer. Pre-3261 requests get a
/// synthetic branch from Call-ID, CSeq, From tag and Request-URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxKey {
    pub branch: String,
    pub sent_by: String,
    pub method: Method,
    pub call_id: String,
    pub cseq: u32,
}

impl TxKey {
    pub fn server(req: &Request) -> TxKey {
        let via = req.core.top_via();
        let method = match req.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        let branch = match via.branch() {
            Some(b) if b.starts_with(BRANCH_COOKIE) && b.len() > BRANCH_COOKIE.len() => {
                b.to_string()
            }
            _ => format!(
                "2543|{}|{}|{}|{}",
                req.core.call_id,
                req.core.cseq.seq,
                req.core.from.tag().unwrap_or(""),
                req.uri
            ),
        };
        TxKey {
            branch,
            sent_by: via.sent_by(),
            method,
            call_id: req.core.call_id.clone(),
            cseq: req.core.cseq.seq,
        }
    }

    pub(super) fn client(branch: &str, method: &Method) -> TxKey {
        TxKey {
            branch: branch.to_string(),
            sent_by: String::new(),
            method: match method {
                Method::Ack => Method::Invite,
                m => m.clone(),
            },
            call_id: String::new(),
            cseq: 0,
        }
    }

    /// The key of the client transaction a response belongs to.
    pub fn for_response(resp: &Response) -> TxKey {
        TxKey::client(
            resp.core.top_via().branch().unwrap_or(""),
            &resp.core.cseq.method,
        )
    }
}
