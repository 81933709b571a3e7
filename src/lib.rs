//! acd: a SIP contact-center ACD with context-aware routing. See DESIGN.md for the map.

pub mod acd;
pub mod call;
pub mod cluster;
pub mod config;
pub mod context;
pub mod control;
pub mod desk;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod media;
pub mod net;
pub mod report;
pub mod routing;
pub mod sdp;
pub mod serve;
pub mod sip;
pub mod timers;
pub mod tls;
pub mod toml_source;
