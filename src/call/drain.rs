//! Draining: a node that stops taking new calls and lets the ones it has finish, so it can be
//! upgraded or taken out without a caller noticing (issue 12, item 4). New INVITEs get 503 with
//! Retry-After, which sends a carrier or the Kamailio edge to another node; registrations,
//! OPTIONS and everything inside a call go on, and waiting callers still reach agents.

use super::manager::CallManager;

impl CallManager {
    /// Starts (or, with `false`, stops) draining.
    pub fn set_draining(&mut self, on: bool) {
        if on != self.draining {
            tracing::info!(draining = on, calls = self.calls.len(), "drain mode");
        }
        self.draining = on;
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    /// Nothing left to finish: no call but callers away for a callback, which a stop keeps in
    /// the database for the next start.
    pub fn drained(&self) -> bool {
        self.calls.keys().all(|id| self.caller_away(*id))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::*;
    use crate::call::MediaEvent;

    #[test]
    fn a_draining_node_refuses_new_calls_and_finishes_the_ones_it_has() {
        let mut r = Rig::new();
        r.invite("before");
        r.sent(CALLER, "SIP/2.0 200");
        r.m.set_draining(true);
        assert!(!r.m.drained(), "one call still in progress");
        r.invite("after");
        let busy = r.sent(CALLER, "SIP/2.0 503");
        assert!(header(&busy, "Retry-After") == "5", "{busy}");
        assert!(busy.contains("draining"), "{busy}");
        assert_eq!(r.status().calls, 1);
        // The call in progress goes on to its end.
        r.m.handle_media(r.now, MediaEvent::Timeout { call: 1 });
        r.out();
        assert!(r.m.drained());
        // Back in service: calls are taken again.
        r.m.set_draining(false);
        r.invite("again");
        r.sent(CALLER, "SIP/2.0 200");
        assert_eq!(r.status().calls, 1);
    }
}
