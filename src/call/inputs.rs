//! Inputs into calls: media reports and the clock are turned into [`Input`]s, each call's
//! [`Call::handle`](super::manager::Call) says what its phase makes of one, and [`CallManager::apply`]
//! carries that out. All call-layer timers are in one heap ([`Wake`]).

use super::manager::CallManager;
use super::phase::{Action, CallTimer, Input, Wake};
use super::MediaCommand;
use super::MediaEvent;
use crate::acd::CallId;
use crate::events::{Event, Side};
use std::time::Instant;
use tracing::{debug, info, warn};

impl CallManager {
    pub fn handle_media(&mut self, now: Instant, ev: MediaEvent) {
        match ev {
            MediaEvent::Dtmf { call, digit } => self.digit(now, call, digit),
            MediaEvent::Validated { call } => self.step(now, call, Input::CallerRtp),
            MediaEvent::PromptDone { call } => self.step(now, call, Input::PromptDone),
            MediaEvent::Learned { call, leg, addr } => self.learned(call, leg, addr),
            MediaEvent::Timeout { call } => self.step(now, call, Input::MediaTimeout),
            MediaEvent::Failed { call, error } => {
                if self.calls.get(&call).is_some_and(|c| !c.away()) {
                    warn!(call, %error, "media failed");
                }
                self.step(now, call, Input::MediaFailed)
            }
        }
        self.process(now);
    }

    /// A leg's RTP source was learnt: the state of the media, not of the phase, so it is
    /// kept whatever the phase (for the agent, while connected) and goes in the snapshot.
    fn learned(&mut self, call: CallId, leg: super::Leg, addr: std::net::SocketAddr) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let slot = match leg {
            super::Leg::Caller => Some(&mut c.caller_learned),
            super::Leg::Agent => c.talk_mut().map(|t| &mut t.learned),
        };
        if let Some(slot) = slot.filter(|s| **s != Some(addr)) {
            *slot = Some(addr);
            self.snapshot_mark(call);
        }
    }

    /// A digit from the caller (RFC 4733 from the media task, or SIP INFO).
    pub(super) fn digit(&mut self, now: Instant, call: CallId, digit: char) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        if !c.away() {
            let _g = c.span.enter();
            info!(%digit, "dtmf");
            self.events.push_back(Event::Dtmf { call, digit });
        }
        self.step(now, call, Input::Digit(digit));
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ep.handle_timeout(now);
        self.acd.handle_timeout(now);
        while let Some((at, wake)) = self.timers.pop_due(now) {
            match wake {
                Wake::Call(call, t) => self.step(now, call, Input::Timer(t, at)),
                Wake::Pop(call, agent) => self.pop_due(now, call, &agent, at),
                Wake::Qualify(agent) => self.qualify_ping(now, &agent),
                Wake::QualifyAnswer(key) => self.qualify_unanswered(now, &key),
                Wake::Session(call) => self.session_due(now, call),
                Wake::Reliable(call) => self.reliable_due(now, call),
                Wake::HungUpElsewhere(call, leg) => self.hang_up_relayed(now, call, leg),
            }
        }
        self.process(now);
    }

    /// When [`CallManager::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.ep.poll_timeout(),
            self.acd.poll_timeout(),
            self.timers.peek(),
            self.snapshot_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Arms one of `call`'s timers (the call's phase keeps the deadline it checks).
    pub(super) fn arm(&mut self, call: CallId, timer: CallTimer, at: Instant) {
        self.timers.arm(at, Wake::Call(call, timer));
    }

    /// Feeds one input to its call and applies what the call's phase makes of it.
    pub(super) fn step(&mut self, now: Instant, call: CallId, input: Input) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let action = c.handle(now, input);
        self.apply(now, call, input, action);
    }

    /// Carries out what a call's phase decided about `input`.
    pub(super) fn apply(&mut self, now: Instant, call: CallId, input: Input, action: Action) {
        match action {
            Action::Nothing => {}
            Action::Late => {
                if let Some(c) = self.calls.get(&call) {
                    let _g = c.span.enter();
                    debug!(?input, phase = c.phase.name(), "late report ignored");
                }
            }
            Action::Unexpected => {
                self.unexpected_inputs += 1;
                if let Some(c) = self.calls.get(&call) {
                    let _g = c.span.enter();
                    warn!(
                        ?input,
                        phase = c.phase.name(),
                        "input not expected in this phase; ignored"
                    );
                }
            }
            Action::End { by, code } => self.end_call(now, call, by, code),
            Action::Prove { media_running } => self.caller_validated(now, call, media_running),
            // Only the ACK carries the answer: `on_ack` takes it before coming here.
            Action::LateAnswer => self.end_call(now, call, Side::System, 488),
            Action::MenuDigit(digit) => self.ivr_digit(now, call, digit),
            Action::MenuPromptDone => self.ivr_prompt_done(now, call),
            Action::MenuRetry => self.ivr_retry(now, call, false),
            Action::QueueDigit(digit) => {
                // Any other key in line does nothing.
                self.callback_digit(now, call, digit);
            }
            Action::SurveyPromptDone => self.survey_prompt_done(now, call),
            Action::Rated(rating) => self.survey_rated(now, call, rating),
            Action::AgentHungUp => {
                if !self.start_survey(now, call) {
                    self.end_call(now, call, Side::Agent, 487);
                }
            }
            Action::HoldMusic => self.media.push_back(MediaCommand::Hold { call }),
            Action::Announce(kind) => self.announce(now, call, kind),
            Action::LookupTimedOut => {
                let budget = self.cfg.lookup_budget.unwrap_or_default().as_millis();
                self.handle_context(
                    now,
                    call,
                    Err(format!("context lookup timed out after {budget} ms")),
                );
            }
            Action::CallbackRingOut => self.callback_ring_out(now, call),
        }
    }
}
