//! The SIP stack. Sans-IO: nothing here opens a socket or reads the clock; time is passed in.

pub mod auth;
pub mod budget;
pub mod dialog;
pub mod endpoint;
pub mod framing;
pub mod guard;
pub mod header;
pub mod lane;
pub mod msg;
pub mod registrar;
pub mod status;
pub mod transaction;
pub mod uri;
pub mod via;
