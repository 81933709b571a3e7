//! The domain events: every state change of a call or an agent is one [`Event`]. The log writer,
//! the status page and (later) the history writer and desk pusher all consume this one stream.

use crate::acd::CallId;
use serde::Serialize;

/// Which side ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Caller,
    Agent,
    /// acd itself: RTP timeout, missing ACK, shutdown.
    System,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A caller's INVITE was accepted for routing.
    CallArrived {
        call: CallId,
        /// The interaction history row of this call.
        interaction: String,
        caller: String,
        dialed: String,
    },
    /// A call could not be taken (unknown number, bad SDP, no ports).
    CallRefused {
        caller: String,
        dialed: String,
        code: u16,
        reason: String,
    },
    /// What the context store said about the caller (or why it said nothing), and how fast.
    ContextLookup {
        call: CallId,
        number: String,
        ms: u64,
        customer: Option<String>,
        campaigns: Vec<String>,
        /// The newest open ticket, the one the call is most likely about.
        ticket: Option<String>,
        tickets: usize,
        tags: Vec<String>,
        error: Option<String>,
        /// Each source's time and failure, when external sources are configured too.
        sources: Vec<crate::context::SourceReport>,
    },
    /// The dialplan's decision for the call (the trace goes to the debug log and the call).
    Routed {
        call: CallId,
        queue: String,
        priority: i32,
        rule: Option<String>,
        reason: String,
        skip_ivr: bool,
    },
    /// The caller hears a menu.
    Menu {
        call: CallId,
        menu: String,
    },
    /// The caller left a menu: by a digit, or (no digit) to the default after the retries.
    MenuChoice {
        call: CallId,
        menu: String,
        digit: Option<char>,
        /// None when the digit led to another menu.
        queue: Option<String>,
    },
    Queued {
        call: CallId,
        queue: String,
    },
    /// An agent was chosen; `pop` is their screen pop, pushed before their phone rings.
    Offered {
        call: CallId,
        agent: String,
        queue: String,
        /// Shared: every subscriber gets the same pop, not a copy.
        pop: std::sync::Arc<Pop>,
    },
    RingNoAnswer {
        call: CallId,
        agent: String,
    },
    OfferRejected {
        call: CallId,
        agent: String,
        code: u16,
    },
    Connected {
        call: CallId,
        agent: String,
        wait_ms: u64,
    },
    /// The caller left before talking to anyone.
    Abandoned {
        call: CallId,
        queue: String,
        wait_ms: u64,
    },
    /// The caller waited the queue's maximum with no overflow queue and was let go.
    TimedOut {
        call: CallId,
        queue: String,
        wait_ms: u64,
    },
    Ended {
        call: CallId,
        agent: String,
        by: Side,
        talk_ms: u64,
    },
    Dtmf {
        call: CallId,
        digit: char,
    },
    /// The agent put the caller on hold (`on`) or resumed.
    Hold {
        call: CallId,
        on: bool,
    },
    AgentReachable {
        agent: String,
        up: bool,
    },
    /// The agent sent the caller on (blind transfer); the caller waits again, with the notes.
    Transferred {
        call: CallId,
        from_agent: String,
        /// `queue:NAME` or `agent:ID`.
        to: String,
        transfers: u32,
    },
    /// The caller heard their position in line and the expected wait.
    Announcement {
        call: CallId,
        position: u32,
        wait_s: u64,
    },
    /// The caller waited `from`'s maximum and moved to `to`.
    Overflow {
        call: CallId,
        from: String,
        to: String,
    },
    /// The conversation is being recorded to this WAV file.
    Recording {
        call: CallId,
        path: String,
    },
    /// The caller rated the call after the agent hung up; `complaint` when at or below the
    /// dialplan's threshold (the caller is then tagged `complaint`).
    SurveyRating {
        call: CallId,
        interaction: String,
        number: String,
        rating: u8,
        complaint: bool,
    },
    /// The waiting caller pressed the callback key and was let go, keeping their place.
    CallbackRequested {
        call: CallId,
        /// What is kept in the database until the callback is over.
        saved: std::sync::Arc<crate::context::SavedCallback>,
    },
    /// A callback kept from before a restart is back in its queue.
    CallbackRestored {
        call: CallId,
        saved: std::sync::Arc<crate::context::SavedCallback>,
    },
    /// A call saved by a process that did not stop cleanly was taken over by this one (or, when
    /// it could not be, is ended next).
    CallResumed {
        call: CallId,
        snapshot: std::sync::Arc<crate::context::saved_call::CallSnapshot>,
    },
    /// Their turn came: `agent` is kept for them while their phone rings (try `attempt`).
    CallbackDialing {
        call: CallId,
        agent: String,
        attempt: u32,
    },
    /// The customer answered the callback; the agent rings next.
    CallbackAnswered {
        call: CallId,
    },
    /// The customer could not be reached on any try: the callback is given up.
    CallbackFailed {
        call: CallId,
        queue: String,
        attempts: u32,
        wait_ms: u64,
    },
    /// An agent's state changed: registration, desk choice, ringing, talking, wrap-up.
    AgentState {
        agent: String,
        #[serde(flatten)]
        state: crate::acd::AgentState,
        reason: Option<String>,
    },
}

impl Event {
    /// The call this event belongs to; `None` for agent events and refused calls.
    pub fn call(&self) -> Option<CallId> {
        match self {
            Event::CallArrived { call, .. }
            | Event::ContextLookup { call, .. }
            | Event::Routed { call, .. }
            | Event::Menu { call, .. }
            | Event::MenuChoice { call, .. }
            | Event::Queued { call, .. }
            | Event::Offered { call, .. }
            | Event::RingNoAnswer { call, .. }
            | Event::OfferRejected { call, .. }
            | Event::Connected { call, .. }
            | Event::Abandoned { call, .. }
            | Event::TimedOut { call, .. }
            | Event::Ended { call, .. }
            | Event::Dtmf { call, .. }
            | Event::Hold { call, .. }
            | Event::Transferred { call, .. }
            | Event::SurveyRating { call, .. }
            | Event::Recording { call, .. }
            | Event::Overflow { call, .. }
            | Event::CallbackRequested { call, .. }
            | Event::CallbackRestored { call, .. }
            | Event::CallResumed { call, .. }
            | Event::CallbackDialing { call, .. }
            | Event::CallbackAnswered { call }
            | Event::CallbackFailed { call, .. }
            | Event::Announcement { call, .. } => Some(*call),
            Event::CallRefused { .. } | Event::AgentReachable { .. } | Event::AgentState { .. } => {
                None
            }
        }
    }
}

/// An event as durable consumers (the history writer, the callback book) receive it: stamped
/// by the core when it happened, with a sequence number that orders every event of the server
/// (so any one call's events are in order too), not when a consumer got round to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Stamped {
    pub at_ms: i64,
    pub seq: u64,
    pub event: Event,
}

// The screen pop travels in `Event::Offered`: its payload belongs with the events, below the
// call layer that fills it and the desk that shows it.

/// The campaign that brought the caller, as the agent needs it: what was offered and when.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PopCampaign {
    pub name: String,
    pub sent_at: i64,
    pub offer: String,
}

/// Why the call was routed where it was.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PopRoute {
    pub queue: String,
    pub rule: Option<String>,
    pub reason: String,
}

/// The screen pop payload (DESIGN.md "Screen pop payload").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pop {
    pub call_id: crate::acd::CallId,
    /// The interaction history row this call writes (dispositions and notes go there).
    pub interaction: String,
    pub caller: String,
    pub customer: Option<crate::context::Customer>,
    pub campaign: Option<PopCampaign>,
    pub tickets: Vec<crate::context::Ticket>,
    pub history: Vec<crate::context::PastInteraction>,
    pub tags: Vec<String>,
    pub route: PopRoute,
    pub ring_timeout_s: u64,
    /// The matched rule's extra fields.
    pub fields: std::collections::BTreeMap<String, String>,
    /// How often the call has been transferred already, and what earlier agents noted.
    pub transfers: u32,
    pub notes: Vec<String>,
    /// A callback: seconds since the customer asked for it (they are on the line again now).
    pub callback_waited_s: Option<u64>,
    /// Whether a trunk vouches for the caller's number, and where it came from: an unverified
    /// number is only what the caller claims (ask before discussing their account).
    pub caller_verified: bool,
    pub caller_basis: String,
}
