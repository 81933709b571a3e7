//! The lossless path from the core to durable consumers (the history writer and the callback
//! book). The core must never wait on a consumer, and no event may be dropped: a bounded
//! channel takes what it can, and whatever does not fit waits, in order, in an overflow queue
//! that is pumped into the channel on every later flush. The writer itself spills to its spool
//! on disk when the database is behind, so the channel only fills while the writer is starved
//! of CPU or its disk is stuck. The overflow is capped (`max_overflow`); only past that is an
//! event lost, and each one is counted and logged, never silent.

use crate::events::{Event, Stamped};
use std::collections::VecDeque;
use tokio::sync::mpsc;
use tracing::error;

pub struct DurableQueue {
    tx: Option<mpsc::Sender<Stamped>>,
    overflow: VecDeque<Stamped>,
    max_overflow: usize,
    seq: u64,
    /// Events that waited in the overflow, and events lost past its cap.
    pub overflowed: u64,
    pub lost: u64,
}

impl DurableQueue {
    pub fn new(tx: Option<mpsc::Sender<Stamped>>, max_overflow: usize) -> DurableQueue {
        DurableQueue {
            tx,
            overflow: VecDeque::new(),
            max_overflow,
            seq: 0,
            overflowed: 0,
            lost: 0,
        }
    }

    /// Stamps `event` at `at_ms` and queues it behind everything not yet delivered.
    pub fn push(&mut self, at_ms: i64, event: Event) {
        let Some(tx) = &self.tx else { return };
        self.seq += 1;
        let s = Stamped {
            at_ms,
            seq: self.seq,
            event,
        };
        if self.overflow.is_empty() {
            match tx.try_send(s) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(s)) => return self.hold(s),
            }
        }
        self.hold(s);
        self.pump();
    }

    fn hold(&mut self, s: Stamped) {
        if self.overflow.len() >= self.max_overflow {
            self.lost += 1;
            if self.lost.is_power_of_two() {
                error!(
                    lost = self.lost,
                    "history writer stuck; events lost past the overflow cap"
                );
            }
            return;
        }
        self.overflowed += 1;
        self.overflow.push_back(s);
    }

    /// Moves waiting events into the channel while it has room.
    pub fn pump(&mut self) {
        let Some(tx) = &self.tx else { return };
        while let Some(s) = self.overflow.pop_front() {
            match tx.try_send(s) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(s)) => {
                    self.overflow.push_front(s);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.overflow.clear();
                    return;
                }
            }
        }
    }

    /// Events waiting for room in the channel.
    pub fn waiting(&self) -> usize {
        self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(call: u64) -> Event {
        Event::Dtmf { call, digit: '1' }
    }

    #[test]
    fn a_stalled_consumer_loses_nothing_and_gets_everything_in_order() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut q = DurableQueue::new(Some(tx), 1_000);
        for i in 0..100 {
            q.push(i, ev(i as u64));
        }
        assert_eq!(q.waiting(), 96);
        let mut got = Vec::new();
        while got.len() < 100 {
            while let Ok(s) = rx.try_recv() {
                got.push(s);
            }
            q.pump();
        }
        let seqs: Vec<u64> = got.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
        assert!(
            got.iter().all(|s| s.event == ev(s.at_ms as u64)),
            "stamped when pushed"
        );
        assert_eq!((q.lost, q.waiting()), (0, 0));
    }

    #[test]
    fn past_the_overflow_cap_losses_are_counted() {
        let (tx, _rx) = mpsc::channel(1);
        let mut q = DurableQueue::new(Some(tx), 10);
        for i in 0..20 {
            q.push(i, ev(1));
        }
        assert_eq!((q.waiting(), q.lost), (10, 9));
    }
}
