//! One partition's leadership, as a lease in NATS KV (bucket `acd_lease`, key = partition).
//! Sans-IO: [`Lease::poll_op`] says which KV operation to try, the IO layer reports what NATS
//! said with [`Lease::on_reply`], and [`Lease::epoch`] answers "may I dispatch now?".
//!
//! The rules (SCALE-OUT §0.1 and §0.4):
//! - a node takes a free lease with `create`; the revision NATS gives it is the **fencing
//!   epoch**, higher than any before it (a KV revision is its stream's sequence number, which
//!   never goes back, even when keys expire);
//! - the leader renews with `update(last revision)` every `renew`; a renewal only counts from
//!   the moment it was *sent*, so a slow answer never stretches the lease;
//! - once the last confirmed renewal was sent `hold` ago the leader stops (the event
//!   [`LeaseEvent::Lost`]), which is before the bucket's `max_age` (`lease`) can let another
//!   node `create` it: two leaders never act at once, whatever the network does;
//! - a leader that lapsed only because NATS was slow tries `update` with its revision first:
//!   if that still succeeds nobody else held the lease meanwhile, and it is the leader again
//!   with the same epoch.
//!
//! [`Fence`] is the other side: what a node that takes commands keeps, so a deposed leader's
//! late command (lower epoch) is refused.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The three intervals of a lease, `renew < hold < lease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// The bucket's `max_age`: how long an unrenewed lease stays in NATS.
    pub lease: Duration,
    pub renew: Duration,
    pub hold: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            lease: Duration::from_millis(2000),
            renew: Duration::from_millis(500),
            hold: Duration::from_millis(1500),
        }
    }
}

impl LeaseTiming {
    /// How often a node looks again at a lease someone else holds (SCALE-OUT: ≤ 0.2 s).
    pub fn poll(&self) -> Duration {
        self.renew.min(Duration::from_millis(200))
    }
}

/// A KV operation on the lease key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseOp {
    /// Take the lease if nobody holds it.
    Create,
    /// Renew it, if `revision` is still the key's last.
    Update { revision: u64 },
    /// Give it up (a clean stop), if `revision` is still the key's last.
    Release { revision: u64 },
}

/// What NATS answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseReply {
    /// Done; the key's new revision.
    Done(u64),
    /// Refused: another node holds the lease (create), or the revision moved on (update).
    Taken,
    /// No answer in time, or NATS is down: nothing is known.
    Unavailable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// This node leads the partition from now, with this epoch.
    Acquired { epoch: u64 },
    /// It stopped leading (lapsed, taken, released): issue no command under `epoch` again.
    Lost { epoch: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Held {
    epoch: u64,
    revision: u64,
    /// When the last renewal NATS confirmed was sent.
    confirmed: Instant,
    /// Still leading (false once `hold` passed without a confirmed renewal).
    valid: bool,
}

/// One partition's lease as this node sees it.
#[derive(Debug)]
pub struct Lease {
    timing: LeaseTiming,
    /// Take the lease when it is free (false: this node has its share of partitions).
    wanted: bool,
    held: Option<Held>,
    in_flight: Option<(LeaseOp, Instant)>,
    next: Instant,
    events: VecDeque<LeaseEvent>,
}

impl Lease {
    pub fn new(now: Instant, timing: LeaseTiming) -> Lease {
        Lease {
            timing,
            wanted: true,
            held: None,
            in_flight: None,
            next: now,
            events: VecDeque::new(),
        }
    }

    /// Whether to take the lease when it is free; a held lease is kept either way.
    pub fn set_wanted(&mut self, wanted: bool) {
        self.wanted = wanted;
    }

    /// The epoch to stamp commands with, while this node leads.
    pub fn epoch(&self, now: Instant) -> Option<u64> {
        let h = self.held?;
        (h.valid && now < h.confirmed + self.timing.hold).then_some(h.epoch)
    }

    /// The next KV operation to try now, if any (at most one is in flight).
    pub fn poll_op(&mut self, now: Instant) -> Option<LeaseOp> {
        self.handle_timeout(now);
        if self.in_flight.is_some() || now < self.next {
            return None;
        }
        let op = match self.held {
            Some(h) => LeaseOp::Update {
                revision: h.revision,
            },
            None if self.wanted => LeaseOp::Create,
            None => return None,
        };
        self.in_flight = Some((op, now));
        Some(op)
    }

    /// Stops leading at once and asks NATS to free the lease for the next node (a clean stop).
    pub fn release(&mut self, now: Instant) -> Option<LeaseOp> {
        self.wanted = false;
        let h = self.held.take()?;
        if h.valid {
            self.events.push_back(LeaseEvent::Lost { epoch: h.epoch });
        }
        let op = LeaseOp::Release {
            revision: h.revision,
        };
        self.in_flight = Some((op, now));
        Some(op)
    }

    /// NATS answered the operation in flight.
    pub fn on_reply(&mut self, now: Instant, reply: LeaseReply) {
        let Some((op, sent)) = self.in_flight.take() else {
            return;
        };
        let poll = self.timing.poll();
        match (op, reply) {
            (LeaseOp::Release { .. }, _) => {}
            (LeaseOp::Create, LeaseReply::Done(revision)) => {
                self.held = Some(Held {
                    epoch: revision,
                    revision,
                    confirmed: sent,
                    valid: true,
                });
                self.events
                    .push_back(LeaseEvent::Acquired { epoch: revision });
                self.next = sent + self.timing.renew;
            }
            (LeaseOp::Update { .. }, LeaseReply::Done(revision)) => {
                if let Some(h) = &mut self.held {
                    h.revision = revision;
                    h.confirmed = sent;
                    if !h.valid && now < sent + self.timing.hold {
                        // Nobody took it while we lapsed: the same epoch leads again.
                        h.valid = true;
                        self.events
                            .push_back(LeaseEvent::Acquired { epoch: h.epoch });
                    }
                }
                self.next = sent + self.timing.renew;
            }
            (LeaseOp::Update { .. }, LeaseReply::Taken) => {
                if let Some(h) = self.held.take() {
                    if h.valid {
                        self.events.push_back(LeaseEvent::Lost { epoch: h.epoch });
                    }
                }
                self.next = now;
            }
            (LeaseOp::Create, LeaseReply::Taken) => self.next = now + poll,
            (_, LeaseReply::Unavailable) => self.next = now + poll,
        }
        self.handle_timeout(now);
    }

    /// Notices a lease that lapsed (`hold` without a confirmed renewal), and an operation
    /// nobody answered (the IO layer should always answer; this keeps a lost reply from
    /// wedging the lease).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(h) = &mut self.held {
            if h.valid && now >= h.confirmed + self.timing.hold {
                h.valid = false;
                self.events.push_back(LeaseEvent::Lost { epoch: h.epoch });
            }
        }
        if let Some((_, sent)) = self.in_flight {
            if now >= sent + self.timing.lease {
                self.in_flight = None;
                self.next = now;
            }
        }
    }

    /// When to call [`Lease::poll_op`] or [`Lease::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let lapse = self
            .held
            .filter(|h| h.valid)
            .map(|h| h.confirmed + self.timing.hold);
        let act = match self.in_flight {
            Some((_, sent)) => Some(sent + self.timing.lease),
            None if self.held.is_some() || self.wanted => Some(self.next),
            None => None,
        };
        match (lapse, act) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_event(&mut self) -> Option<LeaseEvent> {
        self.events.pop_front()
    }
}

/// The highest epoch seen per partition: commands stamped lower come from a leader that has
/// been replaced and are refused.
#[derive(Debug, Default)]
pub struct Fence {
    seen: HashMap<String, u64>,
    /// Commands refused so far (a deposed leader still talking shows here).
    pub refused: u64,
}

impl Fence {
    /// Whether a command from `partition`'s leader under `epoch` may run.
    pub fn admit(&mut self, partition: &str, epoch: u64) -> bool {
        match self.seen.get_mut(partition) {
            Some(high) if epoch < *high => {
                self.refused += 1;
                false
            }
            Some(high) => {
                *high = epoch;
                true
            }
            None => {
                self.seen.insert(partition.to_string(), epoch);
                true
            }
        }
    }

    pub fn epoch(&self, partition: &str) -> Option<u64> {
        self.seen.get(partition).copied()
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
