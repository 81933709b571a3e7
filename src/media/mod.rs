//! Media helpers that need no sockets: G.711, prompts, RFC 4733 DTMF and RTP packet building.
//! The socket loops that use them live in `net/media.rs`; their decisions live in [`bridge`].

pub mod bridge;
pub mod counters;
pub mod dtmf;
pub mod g711;
pub mod prompt;
pub mod recorder;
pub mod rtp;
pub mod srtp;
pub mod voice;
