//! Hang-ups that reach a cluster node before the call they end (SCALE-OUT §0.5 "stray
//! in-dialog requests").
//!
//! When a node dies, a phone that hangs up at that moment sends its BYE to the dead node; the
//! edge retries it on a survivor, which does not hold the call yet: the coordinator hands the
//! dead node's calls out only after the node is taken for dead (the lease time), and maybe to
//! another survivor. Answering that BYE 481 would leave the phone believing the call failed
//! and, worse, let the takeover re-INVITE a phone that has hung up and ring nothing while the
//! other side talks to silence. So a cluster node answers such a BYE 200 (the phone's dialog
//! is over whatever we do) and remembers it for a while: if this node then takes the call
//! over, that leg is not re-INVITEd and the call ends as that side's hang-up. A survivor that
//! did not see the BYE re-INVITEs the leg, gets 481 and ends the call the same way.
//!
//! With three nodes or more the call may go to another survivor, or be there already: the
//! hang-up is told to every node (`StrayBye`), and the one holding the dialog ends that leg,
//! while one that takes the call over later finds it here.
//!
//! Remote-keyed, so capped: past [`CAP`] entries a stray BYE gets the 481 it would get
//! anywhere else, and entries go after [`KEEP`] (a takeover comes within seconds).

use crate::cluster::protocol::StrayBye;
use crate::sip::dialog::Dialog;
use crate::sip::msg::Core;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// At most this many remembered hang-ups (a burst of strangers' BYEs cannot grow it).
pub const CAP: usize = 4096;
/// How long one is remembered: well past a takeover (lease time plus the re-INVITE).
pub const KEEP: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq, Hash, Clone)]
struct Key {
    call_id: String,
    /// The hanging-up side's tag (the BYE's From) and ours (its To).
    from_tag: String,
    to_tag: String,
}

/// BYEs for dialogs this node did not hold when they came.
#[derive(Default)]
pub struct Strays {
    seen: HashMap<Key, Instant>,
    order: VecDeque<(Instant, Key)>,
    /// Hang-ups taken here, to tell the other nodes (at most `CAP`, drained by the driver).
    relay: VecDeque<StrayBye>,
}

impl Key {
    fn of(s: &StrayBye) -> Key {
        Key {
            call_id: s.call_id.clone(),
            from_tag: s.from_tag.clone(),
            to_tag: s.to_tag.clone(),
        }
    }
}

/// Whether the hang-up `s` belongs to `dialog` (ours: its remote tag is the BYE's From).
pub fn ends(s: &StrayBye, dialog: &Dialog) -> bool {
    s.call_id == dialog.call_id
        && dialog.remote.tag() == Some(s.from_tag.as_str())
        && dialog.local.tag() == Some(s.to_tag.as_str())
}

impl Strays {
    /// Remembers the BYE with header block `core`; false when it cannot (no tags, or full):
    /// the caller answers 481 then.
    pub fn note(&mut self, now: Instant, core: &Core) -> bool {
        self.expire(now);
        let (Some(from_tag), Some(to_tag)) = (core.from.tag(), core.to.tag()) else {
            return false;
        };
        if self.seen.len() >= CAP {
            return false;
        }
        let key = Key {
            call_id: core.call_id.clone(),
            from_tag: from_tag.to_string(),
            to_tag: to_tag.to_string(),
        };
        if self.relay.len() < CAP {
            self.relay.push_back(StrayBye {
                // The cluster connection puts this node's name in.
                node: String::new(),
                call_id: key.call_id.clone(),
                from_tag: key.from_tag.clone(),
                to_tag: key.to_tag.clone(),
            });
        }
        self.remember(now, key);
        true
    }

    /// Remembers a hang-up another node took (this node may be handed the call next).
    pub fn note_relayed(&mut self, now: Instant, s: &StrayBye) {
        self.expire(now);
        if self.seen.len() < CAP {
            self.remember(now, Key::of(s));
        }
    }

    /// The next hang-up to tell the other nodes about.
    pub fn poll_relay(&mut self) -> Option<StrayBye> {
        self.relay.pop_front()
    }

    fn remember(&mut self, now: Instant, key: Key) {
        if self.seen.insert(key.clone(), now).is_none() {
            self.order.push_back((now, key));
        }
    }

    /// Whether the peer of `dialog` hung up before this node held it (and forgets it).
    pub fn take(&mut self, now: Instant, dialog: &Dialog) -> bool {
        self.expire(now);
        let (Some(remote), Some(local)) = (dialog.remote.tag(), dialog.local.tag()) else {
            return false;
        };
        let key = Key {
            call_id: dialog.call_id.clone(),
            from_tag: remote.to_string(),
            to_tag: local.to_string(),
        };
        self.seen.remove(&key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < KEEP {
                break;
            }
            if let Some((at, key)) = self.order.pop_front() {
                // A key noted again later keeps its later time.
                if self.seen.get(&key) == Some(&at) {
                    self.seen.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::snapshot::parse_request;
    use crate::sip::transaction::{Peer, Transport};

    fn bye(call_id: &str, from_tag: &str, to_tag: &str) -> Core {
        let text = format!(
            "BYE sip:acd@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKx\r\n\
             From: <sip:c@x>;tag={from_tag}\r\nTo: <sip:acd@x>;tag={to_tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        parse_request(&text).expect("a BYE").core
    }

    fn dialog_of(core: &Core) -> Dialog {
        // Our side of the dialog the BYE belongs to: its To is us, its From the peer.
        Dialog {
            call_id: core.call_id.clone(),
            local: core.to.clone(),
            remote: core.from.clone(),
            remote_target: core.from.uri.clone(),
            route_set: Vec::new(),
            local_cseq: 1,
            peer: Peer {
                transport: Transport::Udp,
                addr: "10.0.0.2:5060".parse().expect("addr"),
            },
        }
    }

    #[test]
    fn a_noted_hang_up_is_found_once_for_its_dialog_only() {
        let now = Instant::now();
        let mut s = Strays::default();
        let b = bye("abc", "peer", "ours");
        assert!(s.note(now, &b));
        // Another dialog of the same Call-ID (a forked leg) is not the one that hung up.
        assert!(!s.take(now, &dialog_of(&bye("abc", "peer", "other"))));
        assert!(s.take(now, &dialog_of(&b)));
        assert!(!s.take(now, &dialog_of(&b)), "taken once");
        // It is told to the other nodes once, and one that hears it knows it too.
        let told = s.poll_relay().expect("relayed");
        assert!(s.poll_relay().is_none());
        assert!(ends(&told, &dialog_of(&b)));
        assert!(!ends(&told, &dialog_of(&bye("abc", "peer", "other"))));
        let mut other = Strays::default();
        other.note_relayed(now, &told);
        assert!(other.take(now, &dialog_of(&b)));
        assert!(other.poll_relay().is_none(), "not told on again");
    }

    #[test]
    fn hang_ups_are_forgotten_after_a_minute_and_capped() {
        let now = Instant::now();
        let mut s = Strays::default();
        let b = bye("abc", "peer", "ours");
        assert!(s.note(now, &b));
        assert!(!s.take(now + KEEP, &dialog_of(&b)));
        for i in 0..CAP {
            assert!(s.note(now, &bye(&i.to_string(), "p", "o")));
        }
        assert!(!s.note(now, &b), "full: a stranger's flood stops here");
        assert_eq!(s.seen.len(), CAP);
        assert!(
            s.note(now + KEEP, &b),
            "room again once the old ones expire"
        );
        assert_eq!(s.seen.len(), 1);
    }

    #[test]
    fn a_bye_without_tags_is_not_remembered() {
        let text = "BYE sip:acd@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKx\r\n\
                    From: <sip:c@x>;tag=a\r\nTo: <sip:acd@x>\r\nCall-ID: q\r\nCSeq: 2 BYE\r\n\
                    Content-Length: 0\r\n\r\n";
        let core = parse_request(text).expect("a BYE").core;
        assert!(!Strays::default().note(Instant::now(), &core));
    }
}
