//! Screen pops and call changes for an agent whose desk is open on another node (issue 14):
//! the node holding the call publishes what the agent's desk must see on `<c>.desk`, every
//! node's desk hub pushes it to the sockets it holds; desks opening and closing, and "the pop
//! is on screen", travel back the same way, so the phone still rings only once the pop is shown.

use crate::acd::{AgentState, CallId};
use crate::events::{Event, Pop, Side};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One note on the desk subject, and the node that sent it (each node ignores its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromDesk {
    pub node: String,
    #[serde(flatten)]
    pub note: DeskNote,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum DeskNote {
    Offered {
        call: CallId,
        agent: String,
        queue: String,
        pop: Box<Pop>,
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
    Abandoned {
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
    Transferred {
        call: CallId,
        from_agent: String,
        to: String,
        transfers: u32,
    },
    AgentState {
        agent: String,
        state: AgentState,
        reason: Option<String>,
    },
    /// An agent's desk opened (its first socket on that node) or closed (its last).
    Open {
        agent: String,
        open: bool,
    },
    /// The desk on the sending node shows the pop of `call` (held by another node).
    Shown {
        call: CallId,
        agent: String,
    },
}

impl DeskNote {
    /// The note for an event an agent's desk must see, if it is one.
    pub fn of(ev: &Event) -> Option<DeskNote> {
        // Most events are not the desk's: seen without copying them.
        let for_desk = matches!(
            ev,
            Event::Offered { .. }
                | Event::RingNoAnswer { .. }
                | Event::OfferRejected { .. }
                | Event::Connected { .. }
                | Event::Abandoned { .. }
                | Event::Ended { .. }
                | Event::Transferred { .. }
                | Event::AgentState { .. }
        );
        if !for_desk {
            return None;
        }
        Some(match ev.clone() {
            Event::Offered {
                call,
                agent,
                queue,
                pop,
            } => DeskNote::Offered {
                call,
                agent,
                queue,
                pop: Box::new((*pop).clone()),
            },
            Event::RingNoAnswer { call, agent } => DeskNote::RingNoAnswer { call, agent },
            Event::OfferRejected { call, agent, code } => {
                DeskNote::OfferRejected { call, agent, code }
            }
            Event::Connected {
                call,
                agent,
                wait_ms,
            } => DeskNote::Connected {
                call,
                agent,
                wait_ms,
            },
            Event::Abandoned {
                call,
                queue,
                wait_ms,
            } => DeskNote::Abandoned {
                call,
                queue,
                wait_ms,
            },
            Event::Ended {
                call,
                agent,
                by,
                talk_ms,
            } => DeskNote::Ended {
                call,
                agent,
                by,
                talk_ms,
            },
            Event::Transferred {
                call,
                from_agent,
                to,
                transfers,
            } => DeskNote::Transferred {
                call,
                from_agent,
                to,
                transfers,
            },
            Event::AgentState {
                agent,
                state,
                reason,
            } => DeskNote::AgentState {
                agent,
                state,
                reason,
            },
            _ => return None,
        })
    }

    /// The event the desk hub applies for this note (`Open` and `Shown` are for the core).
    pub fn event(self) -> Option<Event> {
        Some(match self {
            DeskNote::Offered {
                call,
                agent,
                queue,
                pop,
            } => Event::Offered {
                call,
                agent,
                queue,
                pop: Arc::new(*pop),
            },
            DeskNote::RingNoAnswer { call, agent } => Event::RingNoAnswer { call, agent },
            DeskNote::OfferRejected { call, agent, code } => {
                Event::OfferRejected { call, agent, code }
            }
            DeskNote::Connected {
                call,
                agent,
                wait_ms,
            } => Event::Connected {
                call,
                agent,
                wait_ms,
            },
            DeskNote::Abandoned {
                call,
                queue,
                wait_ms,
            } => Event::Abandoned {
                call,
                queue,
                wait_ms,
            },
            DeskNote::Ended {
                call,
                agent,
                by,
                talk_ms,
            } => Event::Ended {
                call,
                agent,
                by,
                talk_ms,
            },
            DeskNote::Transferred {
                call,
                from_agent,
                to,
                transfers,
            } => Event::Transferred {
                call,
                from_agent,
                to,
                transfers,
            },
            DeskNote::AgentState {
                agent,
                state,
                reason,
            } => Event::AgentState {
                agent,
                state,
                reason,
            },
            DeskNote::Open { .. } | DeskNote::Shown { .. } => return None,
        })
    }
}
