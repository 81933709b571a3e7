//! What callers hear while they wait, besides hold music: their position and expected wait
//! (first after `announce_position_s`, then every `announce_every_s`) and the queue's recorded
//! message (every `message_every_s`). Each is followed by hold music again.

use super::manager::CallManager;
use super::phase::{CallTimer, Phase};
use super::{MediaCommand, PromptRef};
use crate::acd::CallId;
use crate::events::Event;
use std::sync::Arc;
use std::time::Instant;

impl CallManager {
    /// The caller joined a queue: schedule what it announces.
    pub(super) fn announce_start(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let position = self.dialplan.announcements(&c.queue).map(|a| now + a.first);
        let message = self
            .dialplan
            .message(&c.queue)
            .map(|(_, every)| now + *every);
        if let Some(at) = position {
            self.arm(call, CallTimer::Position, at);
        }
        if let Some(at) = message {
            self.arm(call, CallTimer::Message, at);
        }
    }

    /// Time for a caller in line to hear their position or the queue's message (`kind`):
    /// played to a caller waiting with nothing else playing, and planned again for as long as
    /// the call is in line (its phase stops it: a connected call's timer is late).
    pub(super) fn announce(&mut self, now: Instant, call: CallId, kind: CallTimer) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let every = match kind {
            CallTimer::Position => self.dialplan.announcements(&c.queue).map(|a| a.every),
            CallTimer::Message => self.dialplan.message(&c.queue).map(|(_, e)| *e),
            _ => None,
        };
        let Some(every) = every else {
            return;
        };
        let playable = matches!(c.phase, Phase::Waiting) && !c.prompt_playing;
        // Only callers waiting in line: not offered (a phone ringing, a pop on its way).
        let position = self.acd.position(now, call);
        self.timers
            .arm(now + every, super::phase::Wake::Call(call, kind));
        let (true, Some((position, wait_s))) = (playable, position) else {
            return; // something else is playing, or an agent is being rung: next time
        };
        let prompt = match kind {
            CallTimer::Position => {
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
            _ => match self.dialplan.message(&c.queue) {
                Some((p, _)) => p.clone(),
                None => return,
            },
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.prompt_playing = true; // hold music resumes when it ends
        }
        self.media.push_back(MediaCommand::Play { call, prompt });
    }
}
