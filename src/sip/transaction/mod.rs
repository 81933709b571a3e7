//! RFC 3261 §17 transactions with RFC 6026's Accepted state, and the UAS core's 2xx
//! retransmission (§13.3.1.4). Sans-IO: inputs carry `now`, outputs are queued [`Transmit`]s and
//! [`TxEvent`]s, and [`TransactionLayer::poll_timeout`] says when to call back.

mod key;
mod timer;

pub use key::{Peer, Transmit, Transport, TxKey};

use timer::{Deadlines, TimerHeap};
pub use timer::{Timer, TimerConfig};

use super::msg::{Request, Response};
use super::via::Method;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What the transaction user hears.
#[derive(Debug, Clone, PartialEq)]
pub enum TxEvent {
    /// A response for one of our client transactions (2xx retransmissions included for INVITE).
    Response { key: TxKey, response: Box<Response> },
    /// Timer B or F fired: treat as 408.
    Timeout { key: TxKey },
    /// A 2xx we sent was never acknowledged within 64*T1: the UAS should send BYE (§13.3.1.4).
    AckTimeout { call_id: String, cseq: u32 },
    /// Timer H fired: the caller never acknowledged our error answer.
    NoAckForError { key: TxKey },
}

/// What to do with an incoming request, as judged by the transaction layer.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A new server transaction was created: hand the request to the TU.
    New(TxKey),
    /// An ACK for a 2xx (or a stray ACK): not a transaction; hand it to the TU's dialog.
    Ack,
    /// A retransmission or an ACK for an error: handled here, nothing for the TU.
    Absorbed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    InviteServer,
    NonInviteServer,
    InviteClient,
    NonInviteClient,
}

/// Transaction states (RFC 3261 figures 5–8, RFC 6026 figures 3/5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

struct Tx {
    key: TxKey,
    kind: Kind,
    state: State,
    peer: Peer,
    deadlines: Deadlines,
    /// Server: the last response sent. Client: the request.
    last: Bytes,
    /// Client INVITE: the ACK we sent for a non-2xx final response.
    ack: Option<Bytes>,
    interval: Duration,
}

struct AckWait {
    call_id: String,
    cseq: u32,
    /// Our To tag in the 2xx: only an ACK carrying it (someone who received the 2xx) ends the
    /// wait; a blind spoofer who knows the Call-ID it chose does not.
    to_tag: Option<String>,
    peer: Peer,
    response: Bytes,
    interval: Duration,
    deadlines: Deadlines,
}

/// All transactions of one endpoint.
pub struct TransactionLayer {
    cfg: TimerConfig,
    txs: HashMap<u64, Tx>,
    by_key: HashMap<TxKey, u64>,
    acks: HashMap<u64, AckWait>,
    acks_by_dialog: HashMap<(String, u32), u64>,
    heap: TimerHeap,
    next_id: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    pub fn new(cfg: TimerConfig) -> TransactionLayer {
        TransactionLayer {
            cfg,
            txs: HashMap::new(),
            by_key: HashMap::new(),
            acks: HashMap::new(),
            acks_by_dialog: HashMap::new(),
            heap: TimerHeap::default(),
            next_id: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Number of live transactions plus pending 2xx retransmissions (for leak checks and stats).
    pub fn len(&self) -> usize {
        self.txs.len() + self.acks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn state(&self, key: &TxKey) -> Option<State> {
        self.by_key
            .get(key)
            .and_then(|id| self.txs.get(id))
            .map(|t| t.state)
    }

    fn insert(&mut self, tx: Tx) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.by_key.insert(tx.key.clone(), id);
        self.txs.insert(id, tx);
        id
    }

    fn arm(&mut self, id: u64, t: Timer, after: Duration, now: Instant) {
        if let Some(tx) = self.txs.get_mut(&id) {
            self.heap.arm(&mut tx.deadlines, id, t, now + after);
        }
    }

    fn terminate(&mut self, id: u64) {
        if let Some(tx) = self.txs.remove(&id) {
            self.by_key.remove(&tx.key);
        }
    }

    fn send(&mut self, to: Peer, data: Bytes) {
        self.out.push_back(Transmit { to, data });
    }

    /// Whether `req` belongs to a transaction we hold (a retransmission, an ACK or CANCEL
    /// for it), which must be handled even when no new transaction may be started.
    pub fn knows(&self, req: &Request) -> bool {
        matches!(req.method, Method::Ack | Method::Cancel)
            || self.by_key.contains_key(&TxKey::server(req))
    }

    /// Feeds an incoming request. Sends 100 Trying at once for a new INVITE.
    pub fn on_request(&mut self, now: Instant, req: &Request, from: Peer) -> Incoming {
        let key = TxKey::server(req);
        if let Some(&id) = self.by_key.get(&key) {
            return self.on_request_retransmit(now, id, &req.method);
        }
        if req.method == Method::Ack {
            let dialog = (req.core.call_id.clone(), req.core.cseq.seq);
            if let Some(&id) = self.acks_by_dialog.get(&dialog) {
                if self
                    .acks
                    .get(&id)
                    .is_some_and(|w| w.to_tag.as_deref() != req.core.to.tag())
                {
                    return Incoming::Absorbed;
                }
                self.acks_by_dialog.remove(&dialog);
                self.acks.remove(&id);
            }
            return Incoming::Ack;
        }
        let invite = req.method == Method::Invite;
        let id = self.insert(Tx {
            key: key.clone(),
            kind: if invite {
                Kind::InviteServer
            } else {
                Kind::NonInviteServer
            },
            state: if invite {
                State::Proceeding
            } else {
                State::Trying
            },
            peer: from,
            deadlines: Deadlines::default(),
            last: Bytes::new(),
            ack: None,
            interval: self.cfg.t1,
        });
        if invite {
            let trying = Response::to(req, 100, None).to_bytes();
            if let Some(tx) = self.txs.get_mut(&id) {
                tx.last = trying.clone();
            }
            self.send(from, trying);
        }
        Incoming::New(key)
    }

    fn on_request_retransmit(&mut self, now: Instant, id: u64, method: &Method) -> Incoming {
        let Some(tx) = self.txs.get_mut(&id) else {
            return Incoming::Absorbed;
        };
        let reliable = tx.peer.transport.reliable();
        match (tx.kind, tx.state, method) {
            (Kind::InviteServer, State::Completed, Method::Ack) => {
                tx.state = State::Confirmed;
                tx.deadlines.clear(Timer::G);
                tx.deadlines.clear(Timer::H);
                let t4 = if reliable {
                    Duration::ZERO
                } else {
                    self.cfg.t4
                };
                self.arm(id, Timer::I, t4, now);
            }
            (Kind::InviteServer, State::Accepted, Method::Ack) => return Incoming::Ack,
            (_, State::Proceeding | State::Completed, m)
                if *m != Method::Ack && !tx.last.is_empty() =>
            {
                let (p, d) = (tx.peer, tx.last.clone());
                self.send(p, d);
            }
            _ => {}
        }
        Incoming::Absorbed
    }

    /// Sends a response through the server transaction `key`.
    /// For a 2xx to INVITE, also starts the UAS core's retransmission until ACK.
    pub fn respond(&mut self, now: Instant, key: &TxKey, resp: &Response) -> bool {
        let Some(&id) = self.by_key.get(key) else {
            return false;
        };
        let Some(tx) = self.txs.get_mut(&id) else {
            return false;
        };
        if matches!(
            tx.state,
            State::Completed | State::Confirmed | State::Accepted | State::Terminated
        ) {
            return false;
        }
        let data = resp.to_bytes();
        tx.last = data.clone();
        let (peer, kind) = (tx.peer, tx.kind);
        let reliable = peer.transport.reliable();
        self.send(peer, data.clone());
        let cfg = self.cfg;
        match (kind, resp.code) {
            (_, 100..=199) => {
                if let Some(tx) = self.txs.get_mut(&id) {
                    tx.state = State::Proceeding;
                }
            }
            (Kind::InviteServer, 200..=299) => {
                if let Some(tx) = self.txs.get_mut(&id) {
                    tx.state = State::Accepted;
                    // Accepted never resends (the 2xx is the UAS core's to retransmit, kept
                    // in its AckWait): 32 s of holding a copy would only cost memory.
                    tx.last = Bytes::new();
                }
                self.arm(id, Timer::L, cfg.t1 * 64, now);
                self.start_2xx_retransmit(now, resp, peer, data);
            }
            (Kind::InviteServer, _) => {
                if let Some(tx) = self.txs.get_mut(&id) {
                    tx.state = State::Completed;
                }
                if !reliable {
                    self.arm(id, Timer::G, cfg.t1, now);
                }
                self.arm(id, Timer::H, cfg.t1 * 64, now);
            }
            (_, _) => {
                if let Some(tx) = self.txs.get_mut(&id) {
                    tx.state = State::Completed;
                }
                let j = if reliable {
                    Duration::ZERO
                } else {
                    cfg.t1 * 64
                };
                self.arm(id, Timer::J, j, now);
            }
        }
        true
    }

    fn start_2xx_retransmit(&mut self, now: Instant, resp: &Response, peer: Peer, data: Bytes) {
        let dialog = (resp.core.call_id.clone(), resp.core.cseq.seq);
        if let Some(old) = self.acks_by_dialog.remove(&dialog) {
            self.acks.remove(&old);
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut w = AckWait {
            call_id: dialog.0.clone(),
            cseq: dialog.1,
            to_tag: resp.core.to.tag().map(str::to_string),
            peer,
            response: data,
            interval: self.cfg.t1,
            deadlines: Deadlines::default(),
        };
        if !peer.transport.reliable() {
            self.heap.arm(
                &mut w.deadlines,
                id,
                Timer::Retransmit2xx,
                now + self.cfg.t1,
            );
        }
        self.heap.arm(
            &mut w.deadlines,
            id,
            Timer::Ack2xxGiveUp,
            now + self.cfg.t1 * 64,
        );
        self.acks.insert(id, w);
        self.acks_by_dialog.insert(dialog, id);
    }

    /// Starts a client transaction for `req` (whose top Via carries a fresh branch) towards `to`.
    /// ACK for a 2xx is not a transaction: send it with [`TransactionLayer::send_stateless`].
    pub fn send_request(&mut self, now: Instant, req: &Request, to: Peer) -> TxKey {
        let invite = req.method == Method::Invite;
        let state = if invite {
            State::Calling
        } else {
            State::Trying
        };
        let data = req.to_bytes();
        let (id, key) = self.insert_client(req, to, state, data.clone());
        self.send(to, data);
        let t1 = self.cfg.t1;
        if !to.transport.reliable() {
            self.arm(id, if invite { Timer::A } else { Timer::E }, t1, now);
        }
        self.arm(id, if invite { Timer::B } else { Timer::F }, t1 * 64, now);
        key
    }

    /// Takes over an INVITE client transaction that an earlier process started (an agent's
    /// phone ringing when acd was killed), without sending anything: the final answer to it is
    /// then ACKed here (§17.1.1.3), not retransmitted at us until the phone gives up, and reaches
    /// the TU like any other. It starts in Proceeding (the ring was provisional) and Timer B bounds
    /// how long it is kept.
    pub fn adopt_invite(&mut self, now: Instant, req: &Request, to: Peer) -> TxKey {
        let branch = req.core.top_via().branch().unwrap_or("").to_string();
        let key = TxKey::client(&branch, &Method::Invite);
        if self.by_key.contains_key(&key) {
            return key;
        }
        let (id, key) = self.insert_client(req, to, State::Proceeding, req.to_bytes());
        self.arm(id, Timer::B, self.cfg.t1 * 64, now);
        key
    }

    /// Records a client transaction for `req` (serialised as `last`) in `state`; nothing is
    /// sent and no timer armed.
    fn insert_client(
        &mut self,
        req: &Request,
        to: Peer,
        state: State,
        last: Bytes,
    ) -> (u64, TxKey) {
        let branch = req.core.top_via().branch().unwrap_or("").to_string();
        let key = TxKey::client(&branch, &req.method);
        let kind = if req.method == Method::Invite {
            Kind::InviteClient
        } else {
            Kind::NonInviteClient
        };
        let id = self.insert(Tx {
            key: key.clone(),
            kind,
            state,
            peer: to,
            deadlines: Deadlines::default(),
            last,
            ack: None,
            interval: self.cfg.t1,
        });
        (id, key)
    }

    /// Sends bytes outside any transaction (ACK for 2xx, stateless answers).
    pub fn send_stateless(&mut self, to: Peer, data: Bytes) {
        self.send(to, data);
    }

    /// Feeds a response. Returns false when it matches no transaction (the caller drops it).
    pub fn on_response(&mut self, now: Instant, resp: Response) -> bool {
        let key = TxKey::for_response(&resp);
        let Some(&id) = self.by_key.get(&key) else {
            return false;
        };
        let cfg = self.cfg;
        let Some(tx) = self.txs.get_mut(&id) else {
            return false;
        };
        let reliable = tx.peer.transport.reliable();
        let code = resp.code;
        let deliver = match (tx.kind, tx.state, code) {
            (_, State::Calling | State::Trying | State::Proceeding, 100..=199) => {
                tx.state = State::Proceeding;
                if tx.kind == Kind::InviteClient {
                    tx.deadlines.clear(Timer::A);
                    tx.deadlines.clear(Timer::B);
                } else if !reliable {
                    // E continues at T2 in Proceeding (§17.1.2.2).
                    tx.interval = cfg.t2;
                }
                true
            }
            (Kind::InviteClient, State::Calling | State::Proceeding, 200..=299) => {
                tx.state = State::Accepted;
                tx.deadlines = Deadlines::default();
                self.arm(id, Timer::M, cfg.t1 * 64, now);
                true
            }
            (Kind::InviteClient, State::Accepted, 200..=299) => true,
            (Kind::InviteClient, State::Calling | State::Proceeding, _) => {
                let ack = build_ack(&tx.last, &resp);
                tx.state = State::Completed;
                tx.deadlines = Deadlines::default();
                tx.ack = Some(ack.clone());
                let peer = tx.peer;
                self.send(peer, ack);
                let d = if reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32)
                };
                self.arm(id, Timer::D, d, now);
                true
            }
            (Kind::InviteClient, State::Completed, 300..=699) => {
                if let Some(a) = tx.ack.clone() {
                    let peer = tx.peer;
                    self.send(peer, a);
                }
                false
            }
            (Kind::NonInviteClient, State::Trying | State::Proceeding, 200..=699) => {
                tx.state = State::Completed;
                tx.deadlines = Deadlines::default();
                let k = if reliable { Duration::ZERO } else { cfg.t4 };
                self.arm(id, Timer::K, k, now);
                true
            }
            _ => false,
        };
        if deliver {
            self.events.push_back(TxEvent::Response {
                key,
                response: Box::new(resp),
            });
        }
        true
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id, t)) = self.heap.pop_due(now) {
            if let Some(w) = self.acks.get_mut(&id) {
                if w.deadlines.get(t) != Some(at) {
                    continue;
                }
                w.deadlines.clear(t);
                match t {
                    Timer::Retransmit2xx => {
                        let (p, d) = (w.peer, w.response.clone());
                        w.interval = (w.interval * 2).min(self.cfg.t2);
                        let next = now + w.interval;
                        self.heap.arm(&mut w.deadlines, id, t, next);
                        self.send(p, d);
                    }
                    _ => {
                        if let Some(w) = self.acks.remove(&id) {
                            self.acks_by_dialog.remove(&(w.call_id.clone(), w.cseq));
                            self.events.push_back(TxEvent::AckTimeout {
                                call_id: w.call_id,
                                cseq: w.cseq,
                            });
                        }
                    }
                }
                continue;
            }
            let Some(tx) = self.txs.get_mut(&id) else {
                continue;
            };
            if tx.deadlines.get(t) != Some(at) {
                continue;
            }
            tx.deadlines.clear(t);
            match t {
                Timer::A | Timer::E | Timer::G => {
                    let still = match t {
                        Timer::A => tx.state == State::Calling,
                        Timer::E => matches!(tx.state, State::Trying | State::Proceeding),
                        _ => tx.state == State::Completed,
                    };
                    if !still {
                        continue;
                    }
                    let next = match (t, tx.state) {
                        (Timer::E, State::Proceeding) => self.cfg.t2,
                        (Timer::A, _) => tx.interval * 2,
                        _ => (tx.interval * 2).min(self.cfg.t2),
                    };
                    tx.interval = next;
                    let (p, d) = (tx.peer, tx.last.clone());
                    self.heap.arm(&mut tx.deadlines, id, t, now + next);
                    self.send(p, d);
                }
                Timer::B | Timer::F => {
                    let key = tx.key.clone();
                    self.terminate(id);
                    self.events.push_back(TxEvent::Timeout { key });
                }
                Timer::H => {
                    let key = tx.key.clone();
                    self.terminate(id);
                    self.events.push_back(TxEvent::NoAckForError { key });
                }
                Timer::D | Timer::I | Timer::J | Timer::K | Timer::L | Timer::M => {
                    self.terminate(id);
                }
                Timer::Retransmit2xx | Timer::Ack2xxGiveUp => {}
            }
        }
    }

    /// Removes a client transaction the TU no longer cares about (e.g. after CANCEL's 487).
    pub fn forget(&mut self, key: &TxKey) {
        if let Some(&id) = self.by_key.get(key) {
            self.terminate(id);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.heap.peek()
    }

    /// Heap size including stale entries; for tests that check nothing accumulates.
    pub fn timer_entries(&self) -> usize {
        self.heap.len()
    }
}

/// Builds the ACK for a non-2xx final response from the original INVITE (§17.1.1.3): same
/// Request-URI, Call-ID, From, top Via and CSeq number; To from the response.
fn build_ack(invite_bytes: &Bytes, resp: &Response) -> Bytes {
    let limits = super::msg::Limits::default();
    let Ok(super::msg::Message::Request(mut req)) = super::msg::parse(invite_bytes, true, &limits)
    else {
        return Bytes::new();
    };
    req.method = Method::Ack;
    req.core.vias.truncate(1);
    req.core.to = resp.core.to.clone();
    req.core.cseq.method = Method::Ack;
    req.core.contacts.clear();
    req.headers
        .0
        .retain(|(n, _)| matches!(n, super::header::HeaderName::Route));
    req.body = Bytes::new();
    req.to_bytes()
}

#[cfg(test)]
mod tests;
