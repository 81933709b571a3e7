//! acd: a SIP contact-center ACD with context-aware routing. See DESIGN.md for the map.

pub mod acd;
pub mod media;
pub mod sdp;
pub mod sip;
