//! Packet counters shared by all media tasks of one server, and their copy for the status API
//! (kept here, below the tasks that count and the API that reports, so both import down).

use super::bridge::DropReason;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Packet counters shared by all media tasks of one server (relaxed atomics: no lock per packet).
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub to_agent: AtomicU64,
    pub to_caller: AtomicU64,
    pub prompt_frames: AtomicU64,
    /// Of those, frames of one-shot prompts (menus, announcements, survey).
    pub once_frames: AtomicU64,
    /// Packets refused by the bridge, by [`DropReason`] (in `DropReason::ALL` order).
    pub dropped: [AtomicU64; 5],
    /// Legs that locked onto their peer's address.
    pub learned: AtomicU64,
    /// Digits not reported because the core was behind and the call's backlog was full.
    pub digits_dropped: AtomicU64,
}

/// A copy of the counters for the status API.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MediaCounts {
    pub relayed_to_agent: u64,
    pub relayed_to_caller: u64,
    pub prompt_frames: u64,
    pub once_frames: u64,
    /// Refused packets by reason label (`not_rtp`, `payload_type`, `stranger`, `learning`).
    pub dropped: Vec<(String, u64)>,
    pub learned: u64,
    pub digits_dropped: u64,
}

impl MediaCounts {
    /// Packets refused for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .find(|(l, _)| l == reason.label())
            .map_or(0, |(_, n)| *n)
    }
}

impl MediaCounters {
    pub fn snapshot(&self) -> MediaCounts {
        MediaCounts {
            relayed_to_agent: self.to_agent.load(Relaxed),
            relayed_to_caller: self.to_caller.load(Relaxed),
            prompt_frames: self.prompt_frames.load(Relaxed),
            once_frames: self.once_frames.load(Relaxed),
            dropped: DropReason::ALL
                .iter()
                .zip(&self.dropped)
                .map(|(r, n)| (r.label().to_string(), n.load(Relaxed)))
                .collect(),
            learned: self.learned.load(Relaxed),
            digits_dropped: self.digits_dropped.load(Relaxed),
        }
    }

    pub fn refused(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Relaxed);
    }
}
