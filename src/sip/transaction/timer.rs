//! SIP timers (RFC 3261 Table 4, RFC 6026 L/M) on the shared lazily-cleaned deadline heap.
//!
//! Each transaction stores the deadline of each timer it runs; the heap may hold stale entries,
//! which are ignored when popped if the transaction no longer has that exact deadline.

use std::time::{Duration, Instant};

/// Timer values. T1 is the RTT estimate, T2 the cap for non-INVITE retransmits, T4 the time a
/// message may stay in the network.
#[derive(Clone, Copy, Debug)]
pub struct TimerConfig {
    pub t1: Duration,
    pub t2: Duration,
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Which timer. `Retransmit2xx` is the UAS core's §13.3.1.4 timer, `Ack2xxGiveUp` its 64*T1 limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    A,
    B,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    Retransmit2xx,
    Ack2xxGiveUp,
}

impl Timer {
    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

pub(crate) const SLOTS: usize = 14;

/// The per-transaction deadlines.
#[derive(Clone, Debug, Default)]
pub(crate) struct Deadlines(pub [Option<Instant>; SLOTS]);

impl Deadlines {
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t.slot()]
    }
    pub fn clear(&mut self, t: Timer) {
        self.0[t.slot()] = None;
    }
}

/// The transaction layer's deadlines: the shared [`crate::timers::TimerHeap`] keyed by
/// (transaction id, timer), each arming also written to the transaction's [`Deadlines`].
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: crate::timers::TimerHeap<(u64, Timer)>,
}

impl TimerHeap {
    pub fn arm(&mut self, d: &mut Deadlines, id: u64, t: Timer, at: Instant) {
        d.0[t.slot()] = Some(at);
        self.heap.arm(at, (id, t));
    }

    /// The earliest entry, which may be stale.
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek()
    }

    /// Pops the next entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, u64, Timer)> {
        self.heap.pop_due(now).map(|(at, (id, t))| (at, id, t))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }
}
