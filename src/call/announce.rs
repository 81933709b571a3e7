//! Position and estimated-wait announcements for callers waiting in a queue: the first after
//! `announce_position_s`, then every `announce_every_s`, each followed by hold music again.

use super::manager::CallManager;
use super::{MediaCommand, PromptRef};
use crate::acd::CallId;
use crate::events::Event;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Default)]
pub(super) struct AnnounceTimers {
    heap: BinaryHeap<Reverse<(Instant, CallId)>>,
}

impl CallManager {
    /// The caller joined a queue that announces: schedule the first announcement.
    pub(super) fn announce_start(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if let Some(a) = self.dialplan.announcements(&c.queue) {
            self.announce_timers
                .heap
                .push(Reverse((now + a.first, call)));
        }
    }

    pub(super) fn announce_tick(&mut self, now: Instant) {
        while let Some(Reverse((at, call))) = self.announce_timers.heap.peek().copied() {
            if at > now {
                break;
            }
            self.announce_timers.heap.pop();
            self.announce(now, call);
        }
    }

    /// Tells a still-waiting caller their place and expected wait, then schedules the next one.
    fn announce(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(a) = self.dialplan.announcements(&c.queue).cloned() else {
            return;
        };
        // Only callers waiting in line: not ringing, talking, in a menu or a survey.
        let Some((position, wait_s)) = self.acd.position(now, call) else {
            return;
        };
        if c.ivr.is_some() || c.survey.is_some() || c.rule_prompt {
            self.announce_timers
                .heap
                .push(Reverse((now + a.every, call)));
            return;
        }
        let pcm = crate::media::prompt::position_announcement(position, wait_s.div_ceil(60));
        let prompt = PromptRef(Arc::new(crate::media::prompt::Prompt::from_pcm(&pcm)));
        if let Some(c) = self.calls.get_mut(&call) {
            c.rule_prompt = true; // hold music resumes when it ends
        }
        self.media.push_back(MediaCommand::Play { call, prompt });
        self.events.push_back(Event::Announcement {
            call,
            position: position as u32,
            wait_s,
        });
        self.announce_timers
            .heap
            .push(Reverse((now + a.every, call)));
    }

    pub(super) fn announce_timeout(&self) -> Option<Instant> {
        self.announce_timers.heap.peek().map(|Reverse((at, _))| *at)
    }
}
