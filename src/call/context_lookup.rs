//! Asking the context store who is calling, under a hard time budget. The call is answered and
//! hears the welcome prompt while the lookup runs; when the context arrives, or the budget runs
//! out first, the call moves on (to the queue today, to the dialplan's rules next). A late
//! answer is ignored, so a slow or dead database never holds a caller.

use super::manager::CallManager;
use super::phase::{CallTimer, Phase};
use crate::acd::CallId;
use crate::context::CallerContext;
use crate::events::Event;
use std::time::Instant;
use tracing::{info, warn};

/// A lookup the driver must run (and abandon after the budget).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupRequest {
    pub call: CallId,
    /// E.164.
    pub number: String,
}

/// Lookups for the driver to run (a call waiting for its context is in
/// [`Phase::LookingUp`], with its deadline).
#[derive(Default)]
pub(super) struct Lookups {
    requests: std::collections::VecDeque<LookupRequest>,
}

/// The event that reports a lookup: what was found, or why nothing was.
fn lookup_event(
    call: CallId,
    caller: &str,
    ms: u64,
    result: Result<&CallerContext, String>,
    sources: Vec<crate::context::SourceReport>,
) -> Event {
    let (number, customer, campaigns, tickets, tags, error) = match result {
        Ok(ctx) => (
            ctx.number.clone(),
            ctx.customer.as_ref().map(|c| c.id.clone()),
            ctx.campaigns.iter().map(|s| s.campaign.clone()).collect(),
            ctx.tickets.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
            ctx.tags.clone(),
            None,
        ),
        Err(e) => (
            caller.to_string(),
            None,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Some(e),
        ),
    };
    Event::ContextLookup {
        call,
        number,
        ms,
        customer,
        campaigns,
        ticket: tickets.first().cloned(),
        tickets: tickets.len(),
        tags,
        error,
        sources,
    }
}

impl CallManager {
    /// Starts the context lookup for `id`, or moves on at once when there is nothing to ask.
    pub(super) fn request_context(&mut self, now: Instant, id: CallId) {
        let (Some(budget), Some(c)) = (self.cfg.lookup_budget, self.calls.get_mut(&id)) else {
            return self.enqueue_call(now, id);
        };
        let number = match crate::context::e164::normalize(&c.caller_number, &self.cfg.country) {
            Ok(n) => n,
            Err(e) => {
                // Anonymous or an internal extension: nothing to look up.
                let ev = lookup_event(id, &c.caller_number, 0, Err(e.to_string()), Vec::new());
                self.events.push_back(ev);
                return self.enqueue_call(now, id);
            }
        };
        let deadline = now + budget;
        match &mut c.phase {
            // A callback restored after a restart: the customer stays away meanwhile.
            Phase::Away(cb) => cb.lookup = Some((now, deadline)),
            p => {
                *p = Phase::LookingUp {
                    started: now,
                    deadline,
                }
            }
        }
        self.arm(id, CallTimer::Lookup, deadline);
        self.lookups
            .requests
            .push_back(LookupRequest { call: id, number });
    }

    /// The driver's answer: the context, or why there is none.
    pub fn handle_context(
        &mut self,
        now: Instant,
        call: CallId,
        result: Result<CallerContext, String>,
    ) {
        self.handle_context_from(now, call, result, Vec::new());
    }

    /// Like [`CallManager::handle_context`], with how each source did.
    pub fn handle_context_from(
        &mut self,
        now: Instant,
        call: CallId,
        result: Result<CallerContext, String>,
        sources: Vec<crate::context::SourceReport>,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return; // too late: the call is gone
        };
        let started = match c.phase {
            Phase::LookingUp { started, .. } => {
                c.phase = Phase::Routing;
                started
            }
            Phase::Away(ref mut cb) => match cb.lookup.take() {
                Some((started, _)) => started,
                None => return, // too late
            },
            _ => return, // too late: the call already moved on
        };
        let ms = now.saturating_duration_since(started).as_millis() as u64;
        let _g = c.span.clone().entered();
        match &result {
            Ok(ctx) => {
                info!(ms, customer = ?ctx.customer.as_ref().map(|c| &c.id), campaigns = ctx.campaigns.len(), "caller context")
            }
            Err(error) => warn!(ms, %error, "caller context unavailable; routing without it"),
        }
        let ev = lookup_event(
            call,
            &c.caller_number,
            ms,
            result.as_ref().map_err(Clone::clone),
            sources,
        );
        self.events.push_back(ev);
        c.context = result.ok();
        self.enqueue_call(now, call);
        self.run_decisions(now);
    }

    /// A context lookup to run, with the budget in [`super::ManagerConfig::lookup_budget`].
    pub fn poll_lookup(&mut self) -> Option<LookupRequest> {
        self.lookups.requests.pop_front()
    }
}
