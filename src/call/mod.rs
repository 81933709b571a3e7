//! The orchestration of calls: a caller leg, a wait in queue with hold music, an agent leg, the
//! bridge, and the teardown. [`CallManager`] is sans-IO like the SIP and ACD cores it drives:
//! SIP bytes, media events and time go in; SIP bytes, [`MediaCommand`]s and [`Event`]s come out.
//!
//! Read [`driver`] for how the manager is driven (one `handle`, one `poll_output`), [`phase`]
//! for what each input means in each phase of a call, [`manager`] for the flow of one call,
//! [`agent_leg`] for the outbound half and [`uac`] for the state machine of each INVITE we send.

mod agent_leg;
mod announce;
mod arrival;
mod callback;
mod cluster;
mod context_lookup;
mod desk;
mod drain;
mod driver;
mod identity;
mod in_dialog;
mod inputs;
mod ivr;
mod manager;
mod phase;
mod pop;
pub mod ports;
mod prack;
mod qualify;
mod queueing;
mod resume;
mod session_timer;
pub mod snapshot;
mod strays;
mod survey;
mod teardown;
mod uac;

pub use crate::context::{AgentRecord, SavedCallback};
pub use crate::media::prompt::PromptRef;
pub use context_lookup::LookupRequest;
pub use desk::{DeskError, TransferTarget, TRANSFER_HOLD_S};
pub use driver::{Input, Output};
pub use identity::{identify, identify_parts, Identity, Trunk};
pub use manager::{CallManager, ManagerConfig, Persist, Status, Totals};
pub use pop::{Pop, PopCampaign, PopRoute};
pub use ports::PortPool;
pub use resume::ResumeReport;
pub use snapshot::{CallSnapshot, SnapshotWrite};

use crate::acd::CallId;
use crate::sdp::Codec;
use std::net::SocketAddr;

/// A call's media as negotiated with the caller: where to bind, where to send, which codec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaStart {
    pub call: CallId,
    pub caller_port: u16,
    pub agent_port: u16,
    pub caller_remote: SocketAddr,
    pub codec: Codec,
    pub codec_pt: u8,
    pub dtmf_pt: Option<u8>,
    /// Where the caller's SIP came from: a NAT'd phone's RTP comes from the same IP.
    pub caller_signalling: std::net::IpAddr,
    /// The caller's path is proven (their ACK arrived). False on early media: nothing is sent
    /// to them until their own RTP arrives ([`MediaEvent::Validated`]).
    pub validated: bool,
    /// The caller leg is SRTP (SDES over TLS) with these keys.
    pub caller_srtp: Option<crate::media::srtp::SrtpKeys>,
}

/// What the media layer must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaCommand {
    /// Bind both ports of a call and start playing the welcome prompt, then hold music, to the
    /// caller.
    Start(MediaStart),
    /// The agent answered: relay caller ↔ agent. Payload types are mapped between the legs.
    Bridge {
        call: CallId,
        agent_remote: SocketAddr,
        /// The law the agent's phone took: the bridge transcodes when it is not the caller's.
        agent_codec: crate::sdp::Codec,
        agent_codec_pt: u8,
        agent_dtmf_pt: Option<u8>,
        /// Where the agent's SIP came from (for NAT learning of their RTP).
        agent_signalling: Option<std::net::IpAddr>,
        /// The agent leg is SRTP with these keys.
        agent_srtp: Option<crate::media::srtp::SrtpKeys>,
        /// Record the conversation to this WAV file (continued if already recording).
        record: Option<std::path::PathBuf>,
    },
    /// A re-INVITE or UPDATE moved one leg's media address: it is learnt again.
    Retarget {
        call: CallId,
        leg: Leg,
        remote: SocketAddr,
    },
    /// Lock a leg onto the address its phone's RTP came from before a restart (a resumed
    /// call: media flows to a phone behind NAT before its first packet to the new process).
    Relock {
        call: CallId,
        leg: Leg,
        addr: SocketAddr,
    },
    /// Back to hold music (the agent holds, or the caller leaves the menu for the queue).
    Hold { call: CallId },
    /// Play a prompt once (an IVR menu), then silence; `PromptDone` follows.
    Play { call: CallId, prompt: PromptRef },
    /// Close both sockets.
    Stop { call: CallId },
}

/// What the media layer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    Dtmf {
        call: CallId,
        digit: char,
    },
    /// The first RTP from the caller's address arrived: on early media, proof that the caller
    /// is where their SDP says (until then acd sends them nothing and does not queue them).
    Validated {
        call: CallId,
    },
    /// A leg locked onto the address its RTP comes from (behind NAT, not the SDP's): kept in
    /// the call's snapshot so a resumed call sends there at once.
    Learned {
        call: CallId,
        leg: Leg,
        addr: SocketAddr,
    },
    /// A prompt sent with [`MediaCommand::Play`] has been played to its end.
    PromptDone {
        call: CallId,
    },
    /// No RTP from the caller for the configured time: the call is dead.
    Timeout {
        call: CallId,
    },
    /// A port could not be bound.
    Failed {
        call: CallId,
        error: String,
    },
}

/// Which leg of a call a SIP dialog belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leg {
    Caller,
    Agent,
}

#[cfg(test)]
mod announce_tests;
#[cfg(test)]
mod callback_tests;
#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod dtmf_tests;
#[cfg(test)]
mod fork_tests;
#[cfg(test)]
mod phase_tests;
#[cfg(test)]
mod pop_tests;
#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod survey_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transitions_tests;
