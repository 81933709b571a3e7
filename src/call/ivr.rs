//! The IVR: callers the rules did not place hear the number's menu and choose with DTMF
//! (RFC 4733 or SIP INFO). Digits may interrupt the prompt. No or invalid input replays the menu
//! (after the invalid-input prompt) up to `retries` times, then the menu's default queue.

use super::manager::CallManager;
use super::MediaCommand;
use crate::acd::CallId;
use crate::events::Event;
use crate::routing::Target;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;
use tracing::info;

/// A call's place in the menus.
#[derive(Clone, Debug)]
pub(super) struct IvrState {
    menu: String,
    retries_left: u32,
    /// Armed when the prompt has finished playing.
    deadline: Option<Instant>,
}

impl IvrState {
    /// The menu the caller is in (what a snapshot keeps: the menu is replayed on resume).
    pub(super) fn menu(&self) -> &str {
        &self.menu
    }
}

#[derive(Default)]
pub(super) struct IvrTimers {
    heap: BinaryHeap<Reverse<(Instant, CallId)>>,
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
        c.ivr = Some(IvrState {
            menu: menu.to_string(),
            retries_left: retries,
            deadline: None,
        });
        self.media.push_back(MediaCommand::Play { call, prompt });
        self.events.push_back(Event::Menu {
            call,
            menu: menu.to_string(),
        });
    }

    /// The prompt ended: start waiting for a digit.
    pub(super) fn ivr_prompt_done(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(ivr) = c.ivr.as_mut() else {
            // A rule's prompt ended: back to hold music while the call waits.
            if std::mem::take(&mut c.rule_prompt) {
                self.media.push_back(MediaCommand::Hold { call });
            }
            return;
        };
        let Some(m) = self.dialplan.menu(&ivr.menu) else {
            return;
        };
        let at = now + m.timeout;
        ivr.deadline = Some(at);
        self.ivr_timers.heap.push(Reverse((at, call)));
    }

    /// A digit from the caller; true when the IVR took it.
    pub(super) fn ivr_digit(&mut self, now: Instant, call: CallId, digit: char) -> bool {
        let Some(menu) = self
            .calls
            .get(&call)
            .and_then(|c| c.ivr.as_ref())
            .map(|i| i.menu.clone())
        else {
            return false;
        };
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
                    return true;
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
        true
    }

    /// No or invalid input: offer the menu again, or give up to the default queue.
    fn ivr_retry(&mut self, now: Instant, call: CallId, invalid: bool) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(ivr) = c.ivr.as_mut() else { return };
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
        c.ivr = None;
        c.queue = queue;
        let _g = c.span.clone().entered();
        info!(queue = %c.queue, "menu done");
        self.media.push_back(MediaCommand::Hold { call });
        self.join_queue(now, call);
        self.run_decisions(now);
    }

    pub(super) fn ivr_tick(&mut self, now: Instant) {
        while let Some(Reverse((at, call))) = self.ivr_timers.heap.peek().copied() {
            if at > now {
                break;
            }
            self.ivr_timers.heap.pop();
            let due = self
                .calls
                .get(&call)
                .and_then(|c| c.ivr.as_ref())
                .is_some_and(|i| i.deadline == Some(at));
            if due {
                self.ivr_retry(now, call, false);
            }
        }
    }

    pub(super) fn ivr_timeout(&self) -> Option<Instant> {
        self.ivr_timers.heap.peek().map(|Reverse((at, _))| *at)
    }
}
