//! Dialog state (RFC 3261 §12): the identifiers, route set and remote target that in-dialog
//! requests (ACK for 2xx, BYE, re-INVITE answers) are built from.

use super::header::HeaderName;
use super::msg::{Core, Headers, Request, Response};
use super::transaction::{Peer, Transport};
use super::uri::{NameAddr, Uri};
use super::via::{CSeq, Method, Via, BRANCH_COOKIE};
use bytes::Bytes;
use rand::Rng;

/// A random token for tags and branches.
pub fn random_token() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// A fresh RFC 3261 branch.
pub fn new_branch() -> String {
    format!("{BRANCH_COOKIE}{}", random_token())
}

/// The Via of a request we originate: our `host[:port]`, the transport, a fresh branch, `rport`.
pub fn our_via(transport: Transport, host: &str) -> Via {
    let (host, port) =
        super::uri::parse_hostport(host).unwrap_or_else(|_| (host.to_string(), None));
    let mut via = Via {
        transport: transport.as_str().to_string(),
        host,
        port,
        params: Default::default(),
    };
    via.params.set("branch", Some(new_branch()));
    via.params.set("rport", None);
    via
}

/// Our side of one dialog.
#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    pub local: NameAddr,
    pub remote: NameAddr,
    pub remote_target: Uri,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// Where in-dialog requests are sent: the address the peer used, so NAT and loopback work.
    pub peer: Peer,
}

impl Dialog {
    /// The dialog we hold as UAS after answering `invite` with `local_tag`.
    pub fn as_uas(invite: &Request, local_tag: &str, peer: Peer) -> Dialog {
        let mut local = invite.core.to.clone();
        local.params.set("tag", Some(local_tag.to_string()));
        Dialog {
            call_id: invite.core.call_id.clone(),
            local,
            remote: invite.core.from.clone(),
            remote_target: invite
                .core
                .contacts
                .first()
                .map(|c| c.uri.clone())
                .unwrap_or_else(|| invite.core.from.uri.clone()),
            route_set: invite
                .headers
                .get_all(&HeaderName::RecordRoute)
                .map(str::to_string)
                .collect(),
            local_cseq: 1,
            peer,
        }
    }

    /// The dialog we hold as UAC once `resp` (a 2xx) answers our `invite`.
    pub fn as_uac(invite: &Request, resp: &Response, peer: Peer) -> Dialog {
        let mut route_set: Vec<String> = resp
            .headers
            .get_all(&HeaderName::RecordRoute)
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Dialog {
            call_id: invite.core.call_id.clone(),
            local: invite.core.from.clone(),
            remote: resp.core.to.clone(),
            remote_target: resp
                .core
                .contacts
                .first()
                .map(|c| c.uri.clone())
                .unwrap_or_else(|| invite.uri.clone()),
            route_set,
            local_cseq: invite.core.cseq.seq,
            peer,
        }
    }

    /// A new in-dialog request from us (BYE, re-INVITE …) with the next CSeq.
    pub fn request(&mut self, method: Method, via_host: &str) -> Request {
        self.local_cseq += 1;
        let seq = self.local_cseq;
        self.build(method, seq, via_host)
    }

    /// The ACK for a 2xx to our INVITE with CSeq `seq` (its own branch, §13.2.2.4).
    pub fn ack(&self, seq: u32, via_host: &str) -> Request {
        self.build(Method::Ack, seq, via_host)
    }

    fn build(&self, method: Method, seq: u32, via_host: &str) -> Request {
        let mut headers = Headers::default();
        headers.push(HeaderName::UserAgent, super::msg::PRODUCT);
        for r in &self.route_set {
            headers.push(HeaderName::Route, r.clone());
        }
        let via = our_via(self.peer.transport, via_host);
        Request {
            method: method.clone(),
            uri: self.remote_target.clone(),
            core: Core {
                vias: vec![via],
                from: self.local.clone(),
                to: self.remote.clone(),
                call_id: self.call_id.clone(),
                cseq: CSeq { seq, method },
                max_forwards: Some(70),
                contacts: Vec::new(),
                contact_star: false,
            },
            headers,
            body: Bytes::new(),
        }
    }

    /// True when `req` belongs to this dialog (Call-ID and both tags, §12.2.2).
    pub fn matches(&self, core: &Core) -> bool {
        core.call_id == self.call_id
            && core.to.tag() == self.local.tag()
            && core.from.tag() == self.remote.tag()
    }
}
