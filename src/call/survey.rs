//! The post-call survey in the call flow: the agent hung up first on a surveyed queue, so the
//! caller stays on the line, hears the survey prompt and rates the call with one key (1–5).
//! No key before the timeout, or the caller hanging up, simply ends the call.

use super::manager::CallManager;
use super::MediaCommand;
use crate::acd::CallId;
use crate::events::{Event, Side};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;
use tracing::info;

/// A call in its survey.
#[derive(Clone, Debug, Default)]
pub(super) struct SurveyCall {
    /// Armed when the prompt has finished.
    deadline: Option<Instant>,
}

#[derive(Default)]
pub(super) struct SurveyTimers {
    heap: BinaryHeap<Reverse<(Instant, CallId)>>,
}

impl CallManager {
    /// The agent hung up: keeps the caller for the survey when the dialplan asks for one on
    /// this queue. False when the call should simply end.
    pub(super) fn start_survey(&mut self, now: Instant, call: CallId) -> bool {
        let Some(s) = self.dialplan.survey.as_ref() else {
            return false;
        };
        let prompt = s.prompt.clone();
        let Some(c) = self.calls.get_mut(&call) else {
            return false;
        };
        let (Some(connected), true, None) = (c.connected, c.caller.answered, &c.survey) else {
            return false;
        };
        if !s.covers(&c.queue) {
            return false;
        }
        let Some(leg) = c.agent.take() else {
            return false;
        };
        c.connected = None;
        c.agent_hold = false;
        c.survey = Some(SurveyCall::default());
        {
            let _g = c.span.enter();
            info!(agent = %leg.agent, "agent hung up; surveying the caller");
        }
        self.by_sip_id.remove(&leg.invite.core.call_id);
        self.by_agent_tx.remove(&leg.key);
        self.acd.agent_free(now, &leg.agent);
        self.events.push_back(Event::Ended {
            call,
            agent: leg.agent,
            by: Side::Agent,
            talk_ms: now.saturating_duration_since(connected).as_millis() as u64,
        });
        self.media.push_back(MediaCommand::Play { call, prompt });
        self.run_decisions(now);
        true
    }

    /// The survey prompt ended: wait for the key. False when the call is not in a survey.
    pub(super) fn survey_prompt_done(&mut self, now: Instant, call: CallId) -> bool {
        let Some(timeout) = self.dialplan.survey.as_ref().map(|s| s.timeout) else {
            return false;
        };
        let Some(sv) = self.calls.get_mut(&call).and_then(|c| c.survey.as_mut()) else {
            return false;
        };
        let at = now + timeout;
        sv.deadline = Some(at);
        self.survey_timers.heap.push(Reverse((at, call)));
        true
    }

    /// A key during the survey (the prompt may be interrupted). False when not in a survey.
    pub(super) fn survey_digit(&mut self, now: Instant, call: CallId, digit: char) -> bool {
        let Some(c) = self.calls.get(&call) else {
            return false;
        };
        if c.survey.is_none() {
            return false;
        }
        let Some(rating) = digit.to_digit(10).filter(|d| (1..=5).contains(d)) else {
            return true; // not a rating: keep waiting
        };
        let threshold = self
            .dialplan
            .survey
            .as_ref()
            .map_or(0, |s| s.complaint_at_or_below);
        let number = c
            .context
            .as_ref()
            .map(|x| x.number.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| c.caller_number.clone());
        {
            let _g = c.span.enter();
            info!(rating, "survey answered");
        }
        self.events.push_back(Event::SurveyRating {
            call,
            interaction: c.interaction.clone(),
            number,
            rating: rating as u8,
            complaint: rating as u8 <= threshold,
        });
        self.end_call(now, call, Side::System, 200);
        true
    }

    pub(super) fn survey_tick(&mut self, now: Instant) {
        while let Some(Reverse((at, call))) = self.survey_timers.heap.peek().copied() {
            if at > now {
                break;
            }
            self.survey_timers.heap.pop();
            let due = self
                .calls
                .get(&call)
                .and_then(|c| c.survey.as_ref())
                .is_some_and(|s| s.deadline == Some(at));
            if due {
                self.end_call(now, call, Side::System, 200);
            }
        }
    }

    pub(super) fn survey_timeout(&self) -> Option<Instant> {
        self.survey_timers.heap.peek().map(|Reverse((at, _))| *at)
    }
}
