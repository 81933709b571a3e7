//! The control surface of a running node: what reaches its core task ([`Input`]), the handle
//! the HTTP layer, `main` and tests send it with ([`CoreHandle`]) and what the core reports
//! back ([`StatusReport`]). Below both the socket driver (`net`, which runs the task) and the
//! desk (which talks to it), so each imports down.

mod handle;

pub use handle::CoreHandle;

use crate::call::{AgentRecord, MediaEvent};
use bytes::Bytes;
use std::net::SocketAddr;
use tokio::sync::{mpsc, oneshot};

/// A snapshot for the status API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatusReport {
    pub status: crate::call::Status,
    pub queues: Vec<crate::acd::QueueStatus>,
    pub agents: Vec<crate::acd::AgentStatus>,
    pub media: crate::media::counters::MediaCounts,
    /// TCP connections refused: all slots taken, and one source's share taken.
    pub tcp_refused_total: u64,
    pub tcp_refused_per_source: u64,
    /// Events for the history writer that waited for room, still wait, or were lost past the
    /// overflow cap.
    pub events_overflowed: u64,
    pub events_waiting: usize,
    pub events_lost: u64,
    /// Overload control: new requests waiting now, dropped because their lane was full, and
    /// in-dialog messages dropped likewise (UDP only).
    pub fresh_waiting: usize,
    pub fresh_dropped: u64,
    pub dialog_dropped: u64,
}

/// Everything that reaches the core task.
pub enum Input {
    Sip(crate::sip::transaction::Peer, Bytes),
    Media(MediaEvent),
    Agents(Vec<AgentRecord>),
    /// The answer to a caller context lookup.
    Context {
        call: crate::acd::CallId,
        result: Result<crate::context::CallerContext, String>,
        sources: Vec<crate::context::SourceReport>,
    },
    TcpOpen(SocketAddr, mpsc::Sender<Bytes>),
    TcpClosed(SocketAddr),
    Status(oneshot::Sender<StatusReport>),
    /// From the cluster task (a node of several).
    Cluster(crate::cluster::ClusterInput),
    /// Calls a dead cluster node held, handed to this one: take them over.
    TakeOver(Vec<crate::call::CallSnapshot>),
    /// A new dialplan (SIGHUP reload); calls in progress keep their queue.
    Dialplan(Box<crate::routing::Dialplan>),
    /// Callbacks kept in the database from before a restart.
    RestoreCallbacks(Vec<crate::call::SavedCallback>),
    /// End every call cleanly, then stop; the sender hears when the goodbyes are on the wire.
    Shutdown(oneshot::Sender<()>),
    /// Stop without ending calls: the next start resumes them from their snapshots.
    HandOver(oneshot::Sender<()>),
    /// Calls saved by an earlier process, to take over.
    Resume(
        Vec<crate::call::CallSnapshot>,
        oneshot::Sender<crate::call::ResumeReport>,
    ),
    /// Start (`on`) or stop draining; `done` hears once no call is left to finish.
    Drain {
        on: bool,
        done: Option<oneshot::Sender<()>>,
    },
    /// The desk has written a call's pop to the agent (or the agent has no desk open).
    PopDelivered {
        call: crate::acd::CallId,
        agent: String,
    },
    /// An agent's desk opened (its first socket) or closed (its last).
    DeskOpen {
        agent: String,
        open: bool,
    },
    /// An agent's choice at the desk.
    Desk {
        agent: String,
        cmd: crate::acd::DeskCommand,
        reply: oneshot::Sender<Result<(), crate::call::DeskError>>,
    },
    /// A blind transfer asked for at the desk.
    Transfer {
        agent: String,
        call: crate::acd::CallId,
        target: crate::call::TransferTarget,
        note: String,
        reply: oneshot::Sender<Result<u32, crate::call::DeskError>>,
    },
}
