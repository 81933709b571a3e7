//! The post-call survey in the call flow: the agent hung up first on a surveyed queue, so the
//! caller stays on the line, hears the survey prompt and rates the call with one key (1–5).
//! No key before the timeout, or the caller hanging up, simply ends the call.

use super::manager::CallManager;
use super::phase::{CallTimer, Phase};
use super::MediaCommand;
use crate::acd::CallId;
use crate::events::{Event, Side};
use std::time::Instant;
use tracing::info;

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
        if !c.caller.answered || c.talk().is_none() || !s.covers(&c.queue) {
            return false;
        }
        let Phase::Connected(talk) =
            std::mem::replace(&mut c.phase, Phase::Survey { deadline: None })
        else {
            return false;
        };
        let leg = talk.agent;
        {
            let _g = c.span.enter();
            info!(agent = %leg.agent, "agent hung up; surveying the caller");
        }
        self.by_sip_id.remove(&leg.uac.invite.core.call_id);
        self.by_agent_tx.remove(&leg.uac.key);
        self.acd.agent_free(now, &leg.agent);
        self.events.push_back(Event::Ended {
            call,
            agent: leg.agent,
            by: Side::Agent,
            talk_ms: now.saturating_duration_since(talk.since).as_millis() as u64,
        });
        self.media.push_back(MediaCommand::Play { call, prompt });
        self.run_decisions(now);
        true
    }

    /// The survey prompt ended: wait for the key.
    pub(super) fn survey_prompt_done(&mut self, now: Instant, call: CallId) {
        let Some(timeout) = self.dialplan.survey.as_ref().map(|s| s.timeout) else {
            return;
        };
        let Some(Phase::Survey { deadline }) = self.calls.get_mut(&call).map(|c| &mut c.phase)
        else {
            return;
        };
        let at = now + timeout;
        *deadline = Some(at);
        self.arm(call, CallTimer::SurveyInput, at);
    }

    /// The caller rated the call (1–5; the prompt may be interrupted).
    pub(super) fn survey_rated(&mut self, now: Instant, call: CallId, rating: u8) {
        let Some(c) = self.calls.get(&call) else {
            return;
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
            rating,
            complaint: rating <= threshold,
        });
        self.end_call(now, call, Side::System, 200);
    }
}
