//! A call written down for the next process (issue 12): the snapshot's layout, as the store
//! keeps it and reads it back. It lives with the store, below the call layer that takes
//! snapshots (`call::snapshot`) and takes calls over (`call::resume`), so the store and the
//! history writer need nothing from `call`.

use super::CallerContext;
use crate::sdp::{Codec, Direction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Bumped when the layout changes incompatibly; a snapshot of another version is ended, not
/// misread.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One call as a new process needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSnapshot {
    pub v: u32,
    /// The interaction history row (also the snapshot's key in the store).
    pub interaction: String,
    pub caller_number: String,
    pub trusted: bool,
    pub basis: String,
    pub dialed: String,
    pub queue: String,
    pub priority: i32,
    /// Wall-clock milliseconds.
    pub arrived_ms: u64,
    pub caller: SavedCallerLeg,
    pub caller_port: u16,
    pub agent_port: u16,
    /// The caller's media.
    pub media: SavedMedia,
    /// Where the caller's RTP came from when it was not their SDP's address (NAT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_learned: Option<SocketAddr>,
    /// A callback the customer answered: when they had asked for it (wall-clock ms; the pop
    /// of a later offer says how long they waited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called_back_ms: Option<u64>,
    /// The o= session id and version of our SDP (a re-INVITE keeps the id, bumps the version).
    pub sdp_session: u64,
    pub sdp_version: u64,
    pub transfers: u32,
    pub notes: Vec<String>,
    pub route: Option<SavedRoute>,
    pub context: Option<CallerContext>,
    pub phase: SavedPhase,
}

/// The caller's leg: their INVITE (its headers answer and identify the call), our dialog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCallerLeg {
    pub invite: std::sync::Arc<str>,
    pub dialog: SavedDialog,
    /// Our SDP answer.
    pub sdp: String,
    pub answered: bool,
    /// The session timer (RFC 4028) the caller negotiated, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SavedSessionTimer>,
}

/// A caller leg's session timer: its interval and who refreshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSessionTimer {
    pub interval: u32,
    pub we_refresh: bool,
    pub peer_supports: bool,
}

/// One dialog (RFC 3261 §12).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedDialog {
    pub call_id: String,
    pub local: String,
    pub remote: String,
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub peer: SocketAddr,
    pub transport: String,
}

/// A leg's negotiated media.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMedia {
    pub remote: SocketAddr,
    pub codec: Codec,
    pub codec_pt: u8,
    pub dtmf_pt: Option<u8>,
    pub direction: Direction,
}

/// The routing decision, without its trace (which went to the log and the history already).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRoute {
    pub rule: Option<String>,
    pub reason: String,
    pub skills: Vec<String>,
    pub skip_ivr: bool,
    pub preferred_agent: Option<String>,
    pub fallback_s: u64,
    pub pop: BTreeMap<String, String>,
    pub required: Vec<(String, u8)>,
}

/// An agent's phone ringing for the call: the INVITE we sent (a CANCEL is built from it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRinging {
    pub agent: String,
    pub invite: std::sync::Arc<str>,
    pub peer: SocketAddr,
    pub transport: String,
}

/// The answered agent leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAgentLeg {
    pub agent: String,
    /// Our offer to the agent: its SDP is what we answer their re-offers with.
    pub invite: std::sync::Arc<str>,
    pub dialog: SavedDialog,
    pub media: SavedMedia,
    /// Where the agent's RTP came from when it was not their SDP's address (NAT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<SocketAddr>,
    /// Our last o= version on this leg (its session id is in `invite`), so a resume's
    /// re-INVITE goes above what the phone last saw.
    #[serde(default)]
    pub sdp_version: u64,
}

/// Where the call was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum SavedPhase {
    /// Proven, being looked up and routed.
    Routing,
    /// In an IVR menu.
    Menu { menu: String },
    /// In line since `enqueued_ms`.
    Waiting { enqueued_ms: u64 },
    /// In line, and agents' phones ringing for it.
    Ringing {
        enqueued_ms: u64,
        legs: Vec<SavedRinging>,
    },
    /// Talking to an agent (or held by them).
    Connected {
        agent: SavedAgentLeg,
        connected_ms: u64,
        held: bool,
    },
    /// A call a new process cannot take over; it is ended cleanly (BYE, a final answer,
    /// CANCEL), never left half-open.
    Unresumable {
        why: String,
        /// The answered agent and their dialog, to BYE.
        agent: Option<(String, SavedDialog)>,
        ringing: Vec<SavedRinging>,
    },
}

/// A snapshot to write, or (`body` none) one to delete because its call is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotWrite {
    pub interaction: String,
    pub body: Option<Box<CallSnapshot>>,
}
