//! The IVR: callers the rules did not place hear the number's menu and choose with DTMF
//! (RFC 4733 or SIP INFO). Digits may interrupt the prompt. No or invalid input replays the menu
//! (after the invalid-input prompt) up to `retries` times, then the menu's default queue.

use super::manager::CallManager;
use super::phase::{CallTimer, Phase};
use super::MediaCommand;
use crate::acd::CallId;
use crate::events::Event;
use crate::routing::Target;
use std::time::Instant;
use tracing::info;

/// A call's place in the menus.
#[derive(Clone, Debug)]
pub(super) struct IvrState {
    pub(super) menu: String,
    pub(super) retries_left: u32,
    /// Armed when the prompt has finished playing.
    pub(super) deadline: Option<Instant>,
}

impl IvrState {
    /// The menu the caller is in (what a snapshot keeps: the menu is replayed on resume).
    pub(super) fn menu(&self) -> &str {
        &self.menu
    }

    /// When the caller's time to choose runs out (armed once the prompt has been played).
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl CallManager {
    /// Puts the caller in `menu` (fresh retries) and plays its prompt.
    pub(super) fn start_menu(&mut self, call: CallId, menu: &str) {
        let Some(m) = self.dialplan.menu(menu) else {
            return;
        };
        let (prompt, retries) = (m.prompt.clone(), m.retries);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.phase = Phase::Menu(IvrState {
            menu: menu.to_string(),
            retries_left: retries,
            deadline: None,
        });
        c.prompt_playing = false;
        self.media.push_back(MediaCommand::Play { call, prompt });
        self.events.push_back(Event::Menu {
            call,
            menu: menu.to_string(),
        });
    }

    /// The prompt ended: start waiting for a digit.
    pub(super) fn ivr_prompt_done(&mut self, now: Instant, call: CallId) {
        let Some(Phase::Menu(ivr)) = self.calls.get_mut(&call).map(|c| &mut c.phase) else {
            return;
        };
        let Some(m) = self.dialplan.menu(&ivr.menu) else {
            return;
        };
        let at = now + m.timeout;
        ivr.deadline = Some(at);
        self.arm(call, CallTimer::MenuInput, at);
    }

    /// A digit from a caller in a menu.
    pub(super) fn ivr_digit(&mut self, now: Instant, call: CallId, digit: char) {
        let Some(Phase::Menu(ivr)) = self.calls.get(&call).map(|c| &c.phase) else {
            return;
        };
        let menu = ivr.menu.clone();
        let target = self
            .dialplan
            .menu(&menu)
            .and_then(|m| m.options.get(&digit).cloned());
        match target {
            Some(Target::Queue(q)) => {
                self.events.push_back(Event::MenuChoice {
                    call,
                    menu,
                    digit: Some(digit),
                    queue: Some(q.clone()),
                });
                self.leave_menu(now, call, q);
            }
            Some(Target::Agent(agent)) => {
                let Some(default) = self.dialplan.menu(&menu).map(|m| m.default.clone()) else {
                    return;
                };
                if let Some(r) = self.calls.get_mut(&call).and_then(|c| c.route.as_mut()) {
                    r.preferred_agent = Some(agent.clone());
                    r.fallback_s = crate::routing::AGENT_FALLBACK_S;
                    r.reason = format!("asked for agent {agent} in the menu");
                }
                self.events.push_back(Event::MenuChoice {
                    call,
                    menu,
                    digit: Some(digit),
                    queue: Some(default.clone()),
                });
                self.leave_menu(now, call, default);
            }
            Some(Target::Menu(next)) => {
                self.events.push_back(Event::MenuChoice {
                    call,
                    menu,
                    digit: Some(digit),
                    queue: None,
                });
                self.start_menu(call, &next);
            }
            None => self.ivr_retry(now, call, true),
        }
    }

    /// No or invalid input: offer the menu again, or give up to the default queue.
    pub(super) fn ivr_retry(&mut self, now: Instant, call: CallId, invalid: bool) {
        let Some(Phase::Menu(ivr)) = self.calls.get_mut(&call).map(|c| &mut c.phase) else {
            return;
        };
        let Some(m) = self.dialplan.menu(&ivr.menu) else {
            return;
        };
        if ivr.retries_left == 0 {
            let (menu, default) = (ivr.menu.clone(), m.default.clone());
            self.events.push_back(Event::MenuChoice {
                call,
                menu,
                digit: None,
                queue: Some(default.clone()),
            });
            return self.leave_menu(now, call, default);
        }
        ivr.retries_left -= 1;
        ivr.deadline = None;
        let prompt = if invalid {
            m.retry_prompt.clone()
        } else {
            m.prompt.clone()
        };
        self.media.push_back(MediaCommand::Play { call, prompt });
    }

    /// The caller chose (or was given) a queue: hold music and the queue.
    fn leave_menu(&mut self, now: Instant, call: CallId, queue: String) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.queue = queue;
        let _g = c.span.clone().entered();
        info!(queue = %c.queue, "menu done");
        self.media.push_back(MediaCommand::Hold { call });
        self.join_queue(now, call);
        self.run_decisions(now);
    }
}
