//! The ACD engine: queues, agents, skills and ring timers. Sans-IO: every input carries `now`,
//! decisions come out of [`Acd::poll_decision`], and [`Acd::poll_timeout`] says when to call back.
//!
//! Dispatch never scans all callers: each queue keeps its callers ordered by (score, arrival),
//! where the score is the priority, aged if the queue says so, and each skill keeps its idle
//! agents ordered by how long they have been idle. So both "a caller arrived" and "an agent
//! became free" cost O(log n) for longest-idle; other strategies look at the free agents only.
//!
//! `engine` holds the state and the queue/offer core (`records`: one per call; `queue_config`:
//! a queue's settings); `dispatch` pairs callers with agents;
//! `strategy` picks among free agents and handles auto-pause, overflow and position estimates;
//! `presence` is the desk's side of an agent's state; `timers` the one timer heap; `status` the
//! live views.

mod callback;
mod dispatch;
mod engine;
mod presence;
mod queue_config;
mod records;
mod resume;
mod status;
mod strategy;
mod timers;
mod widen;

pub use engine::{
    Acd, AcdError, AgentState, AgentStatus, CrossQueue, Decision, Desk, QueueConfig, QueueStatus,
    Strategy, Widen,
};
pub use presence::{DeskCommand, PresenceError};

/// Identifies one call inside the process.
pub type CallId = u64;

#[cfg(test)]
mod callback_tests;
#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod strategy_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod widen_tests;
