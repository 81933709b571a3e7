//! The ACD engine: queues, agents, skills and ring timers. Sans-IO: every input carries `now`,
//! decisions come out of [`Acd::poll_decision`], and [`Acd::poll_timeout`] says when to call back.
//!
//! Dispatch never scans all callers: each queue keeps its callers ordered by (priority, arrival)
//! and each skill keeps its idle agents ordered by how long they have been idle, so both "a caller
//! arrived" and "an agent became free" cost O(log n).

mod dispatch;
mod engine;
mod presence;
mod status;
mod strategy;
mod timers;

pub use engine::{
    Acd, AcdError, AgentState, AgentStatus, Decision, QueueConfig, QueueStatus, Strategy,
};
pub use presence::{DeskCommand, PresenceError};

/// Identifies one call inside the process.
pub type CallId = u64;

#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod strategy_tests;
#[cfg(test)]
mod tests;
