//! What callers hear while they wait, besides hold music: their position and expected wait
//! (first after `announce_position_s`, then every `announce_every_s`) and the queue's recorded
//! message (every `message_every_s`). Each is followed by hold music again.

use super::manager::CallManager;
use super::{MediaCommand, PromptRef};
use crate::acd::CallId;
use crate::events::Event;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Position,
    Message,
}

#[derive(Default)]
pub(super) struct AnnounceTimers {
    heap: BinaryHeap<Reverse<(Instant, CallId, Kind)>>,
}

impl CallManager {
    /// The caller joined a queue: schedule what it announces.
    pub(super) fn announce_start(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if let Some(a) = self.dialplan.announcements(&c.queue) {
            let at = now + a.first;
            self.announce_timers
                .heap
                .push(Reverse((at, call, Kind::Position)));
        }
        if let Some((_, every)) = self.dialplan.message(&c.queue) {
            let at = now + *every;
            self.announce_timers
                .heap
                .push(Reverse((at, call, Kind::Message)));
        }
    }

    pub(super) fn announce_tick(&mut self, now: Instant) {
        while let Some(Reverse((at, call, kind))) = self.announce_timers.heap.peek().copied() {
            if at > now {
                break;
            }
            self.announce_timers.heap.pop();
            self.announce(now, call, kind);
        }
    }

    /// Plays the position or the message to a still-waiting caller, then schedules the next.
    fn announce(&mut self, now: Instant, call: CallId, kind: Kind) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let every = match kind {
            Kind::Position => self.dialplan.announcements(&c.queue).map(|a| a.every),
            Kind::Message => self.dialplan.message(&c.queue).map(|(_, e)| *e),
        };
        let Some(every) = every else {
            return;
        };
        if c.callback.as_ref().is_some_and(|cb| !cb.answered) {
            return; // nobody on the line to hear it
        }
        // Only callers waiting in line: not ringing, talking, in a menu or a survey.
        let Some((position, wait_s)) = self.acd.position(now, call) else {
            return;
        };
        self.announce_timers
            .heap
            .push(Reverse((now + every, call, kind)));
        if c.ivr.is_some() || c.survey.is_some() || c.rule_prompt {
            return; // something else is playing: try again next time
        }
        let prompt = match kind {
            Kind::Position => {
                let minutes = wait_s.div_ceil(60);
                let pcm = match self
                    .dialplan
                    .announcements(&c.queue)
                    .and_then(|a| a.voice.as_ref())
                {
                    Some(voice) => voice.position_announcement(position, minutes),
                    None => crate::media::prompt::position_announcement(position, minutes),
                };
                self.events.push_back(Event::Announcement {
                    call,
                    position: position as u32,
                    wait_s,
                });
                PromptRef(Arc::new(crate::media::prompt::Prompt::from_pcm(&pcm)))
            }
            Kind::Message => match self.dialplan.message(&c.queue) {
                Some((p, _)) => p.clone(),
                None => return,
            },
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.rule_prompt = true; // hold music resumes when it ends
        }
        self.media.push_back(MediaCommand::Play { call, prompt });
    }

    pub(super) fn announce_timeout(&self) -> Option<Instant> {
        self.announce_timers
            .heap
            .peek()
            .map(|Reverse((at, _, _))| *at)
    }
}
