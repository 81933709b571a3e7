//! One deadline heap for every sans-IO core: the SIP transaction layer's RFC 3261 timers and
//! the call layer's per-call and per-agent timers are the same structure with different keys.
//!
//! Cancelling is lazy, as in quinn-proto and str0m: the owner keeps the deadline it armed (in
//! the transaction, in the call's phase) and ignores an entry whose deadline is no longer the
//! owner's when it pops. Arming is O(log n), cancelling is free, and a stale entry costs one
//! pop.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A min-heap of `(deadline, key)`; entries due at the same instant pop in the order armed.
pub struct TimerHeap<K> {
    heap: BinaryHeap<Entry<K>>,
    seq: u64,
}

struct Entry<K> {
    at: Instant,
    seq: u64,
    key: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<K> Eq for Entry<K> {}

impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Entry<K> {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest deadline must be on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<K> Default for TimerHeap<K> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<K> TimerHeap<K> {
    pub fn arm(&mut self, at: Instant, key: K) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            key,
        });
    }

    /// The earliest deadline, which may be stale.
    pub fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// The next entry due at or before `now`, with the deadline it was armed for.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(e) if e.at <= now => self.heap.pop().map(|e| (e.at, e.key)),
            _ => None,
        }
    }

    /// Entries including stale ones (for tests that check nothing accumulates).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_pop_earliest_first_and_in_arming_order_at_the_same_instant() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.arm(t0 + Duration::from_secs(2), "late");
        h.arm(t0 + Duration::from_secs(1), "first");
        h.arm(t0 + Duration::from_secs(1), "second");
        assert_eq!(h.peek(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(h.pop_due(t0), None, "nothing is due yet");
        let now = t0 + Duration::from_secs(1);
        assert_eq!(h.pop_due(now).map(|e| e.1), Some("first"));
        assert_eq!(h.pop_due(now).map(|e| e.1), Some("second"));
        assert_eq!(h.pop_due(now), None, "the last one is a second later");
        assert_eq!(h.len(), 1);
    }
}
