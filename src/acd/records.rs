//! One record per call the engine knows (instead of a map per concern): its place in line or
//! its offer, its reservation, needs, deadlines and callback state. The engine's indexes (each
//! queue's waiting order, the calls with a reservation) point into these records.

use super::engine::{Acd, Key, Widening};
use super::CallId;
use std::time::{Duration, Instant};

/// Everything the engine keeps about one call, from the moment the call layer first names it
/// (the skills its route needs, a restored callback's dial time) until it is answered or gone.
#[derive(Default)]
pub(super) struct CallRecord {
    /// Its place in line; `None` while only named, before it joins a queue.
    pub(super) line: Option<Place>,
    /// Kept for the preferred agent until then (one chance: cleared when offered).
    pub(super) reserved: Option<(String, Instant)>,
    /// Skills with minimum levels it needs beyond its queue's skill (from a routing rule).
    pub(super) required: Vec<(String, u8)>,
    /// When it reaches its queue's maximum wait.
    pub(super) max_wait_at: Option<Instant>,
    /// How far its queue's widening steps have gone.
    pub(super) widening: Option<Widening>,
    /// A callback: how long the customer's phone may ring before the agent is rung (added
    /// to the offer's deadline until they answer).
    pub(super) callback: Option<Duration>,
    /// Kept in line but not offered before then (a callback that went unanswered).
    pub(super) held: Option<Instant>,
}

impl CallRecord {
    /// Nothing left worth keeping (a call named with no needs, or whose needs were cleared).
    pub(super) fn is_empty(&self) -> bool {
        self.line.is_none()
            && self.reserved.is_none()
            && self.required.is_empty()
            && self.callback.is_none()
            && self.held.is_none()
    }
}

/// Where a queued call is: its queue and place, and the offer when agents are being rung.
pub(super) struct Place {
    pub(super) queue: String,
    pub(super) key: Key,
    pub(super) enqueued: Instant,
    /// Being offered (`None`: waiting in line, in `Acd::waiting`).
    pub(super) offer: Option<Offer>,
}

pub(super) struct Offer {
    pub(super) agent: String,
    /// Agents ringing for the same call under ring-all.
    pub(super) others: Vec<String>,
    pub(super) deadline: Instant,
}

impl Acd {
    /// The call's place, waiting or offered.
    pub(super) fn line_of(&self, call: CallId) -> Option<&Place> {
        self.calls.get(&call)?.line.as_ref()
    }

    /// The call's place while it waits in line (not being offered).
    pub(super) fn waiting_of(&self, call: CallId) -> Option<&Place> {
        self.line_of(call).filter(|p| p.offer.is_none())
    }

    /// The call's place and offer while agents are rung for it.
    pub(super) fn offer_of(&self, call: CallId) -> Option<(&Place, &Offer)> {
        let p = self.line_of(call)?;
        Some((p, p.offer.as_ref()?))
    }

    pub(super) fn offer_mut(&mut self, call: CallId) -> Option<&mut Offer> {
        self.calls.get_mut(&call)?.line.as_mut()?.offer.as_mut()
    }

    /// Keeps `call` for `agent` until `until`.
    pub(super) fn reserve(&mut self, call: CallId, agent: &str, until: Instant) {
        self.calls.entry(call).or_default().reserved = Some((agent.to_string(), until));
        self.reserved.insert(call);
    }

    /// The call's reservation is over (used, run out, or the call gone).
    pub(super) fn unreserve(&mut self, call: CallId) {
        self.reserved.remove(&call);
        if let Some(r) = self.calls.get_mut(&call) {
            r.reserved = None;
        }
    }

    /// Drops a record that no longer holds anything.
    pub(super) fn tidy(&mut self, call: CallId) {
        if self.calls.get(&call).is_some_and(CallRecord::is_empty) {
            self.calls.remove(&call);
        }
    }
}
