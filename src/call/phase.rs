//! A call's phase: where it is in its life, as one value whose variants carry the data only
//! that phase has (issue 12). The phase decides what an input means — a digit is a menu
//! choice, a rating, a callback request or nothing — in one place, [`Call::handle`], which
//! needs no manager, no endpoint and no clock but the `now` it is given, so every input in
//! every phase is tested directly (`phase_tests.rs`).
//!
//! [`Call::handle`] returns one [`Action`]; the manager applies it (it owns the SIP endpoint,
//! the ACD, the dialplan and the media commands). Inputs a phase does not expect are reported
//! as [`Action::Unexpected`] (logged and counted in `Status::unexpected_inputs`), never dropped
//! without a word; reports that race a phase change (a prompt that ended as the caller chose,
//! a timer armed for the phase the call just left) are [`Action::Late`].

use super::agent_leg::AgentLeg;
use super::callback::Callback;
use super::ivr::IvrState;
use super::manager::Call;
use crate::events::Side;
use std::time::Instant;

/// Where a call is.
pub(super) enum Phase {
    /// Answered (200, or 183 with early media) but the caller has not proven their address
    /// yet: nothing is announced, looked up, queued or sent to them. `late_offer`: our SDP
    /// went in the 200 and the caller's answer comes in the ACK.
    Answering { late_offer: bool },
    /// Proven; being routed (between the proof and the lookup, or with no lookup at all).
    Routing,
    /// The context store is being asked, until `deadline` (the lookup budget).
    LookingUp { started: Instant, deadline: Instant },
    /// In an IVR menu.
    Menu(IvrState),
    /// In line, hearing hold music and announcements.
    Waiting,
    /// In line with agents' phones ringing (ring-all rings several): never empty.
    Ringing(Vec<AgentLeg>),
    /// Talking to an agent.
    Connected(Box<Talk>),
    /// The agent hung up and the caller is rating the call; `deadline` is armed when the
    /// prompt has been played.
    Survey { deadline: Option<Instant> },
    /// The caller hung up to be called back in their turn: no caller leg until the customer
    /// answers our call.
    Away(Box<Callback>),
    /// The caller waited the queue's maximum and hears the goodbye message.
    LettingGo,
}

/// A connected call's agent side.
pub(super) struct Talk {
    pub agent: AgentLeg,
    pub since: Instant,
    /// The agent put the caller on hold (the caller hears our hold music).
    pub held: bool,
    /// The agent leg's SRTP keys (kept for un-hold and re-INVITEs).
    pub srtp: Option<crate::media::srtp::SrtpKeys>,
    /// Where the agent's RTP really comes from, when not from their SDP's address (NAT).
    pub learned: Option<std::net::SocketAddr>,
}

/// The call layer's own timers, one heap for all (see [`crate::timers`]). Each is checked
/// against the deadline its phase keeps, so a timer of a phase the call left is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum CallTimer {
    /// The menu prompt was played and no digit came.
    MenuInput,
    /// The survey prompt was played and no rating came.
    SurveyInput,
    /// The context lookup's budget ran out.
    Lookup,
    /// The customer's phone rang for the callback's whole dial timeout.
    CallbackRing,
    /// Time to tell a waiting caller their position.
    Position,
    /// Time to play the queue's recorded message.
    Message,
}

/// Everything the call layer waits for, in the manager's one [`crate::timers::TimerHeap`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Wake {
    Call(crate::acd::CallId, CallTimer),
    /// An agent's INVITE waited its longest for the screen pop to reach the desk.
    Pop(crate::acd::CallId, String),
    /// Time to ping an agent's phone with OPTIONS.
    Qualify(String),
    /// An OPTIONS ping's time to be answered is up.
    QualifyAnswer(crate::sip::transaction::TxKey),
    /// The caller leg's session timer (RFC 4028): refresh or expiry.
    Session(crate::acd::CallId),
    /// Our reliable 183 to the caller (RFC 3262): retransmit, or give up.
    Reliable(crate::acd::CallId),
    /// A hang-up another node took for this call: applied now unless the call turned out to be
    /// another node's meanwhile (see `cluster::hung_up_elsewhere`).
    HungUpElsewhere(crate::acd::CallId, super::Leg),
}

/// What happened to a call, from the wire, the media task or the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Input {
    /// The ACK of our 200, with our tag.
    Ack,
    /// The caller's first RTP from the address their SDP named (early media).
    CallerRtp,
    /// The caller CANCELled their INVITE (it was not answered with a 200 yet).
    Cancel,
    /// Our 200 was retransmitted for 64*T1 and no ACK came.
    AckTimeout,
    CallerBye,
    AgentBye,
    /// A DTMF digit from the caller (RFC 4733 or SIP INFO).
    Digit(char),
    /// A prompt sent with `MediaCommand::Play` has been played to its end.
    PromptDone,
    /// No RTP from the caller for the configured time.
    MediaTimeout,
    /// The media task could not run (a port would not bind).
    MediaFailed,
    /// One of the call's timers, with the deadline it was armed for.
    Timer(CallTimer, Instant),
}

impl Input {
    /// The BYE of one leg.
    pub(super) fn bye_of(leg: super::Leg) -> Input {
        match leg {
            super::Leg::Caller => Input::CallerBye,
            super::Leg::Agent => Input::AgentBye,
        }
    }
}

/// What the manager does with an input (see [`Call::handle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Normal in this phase and changes nothing (a retransmitted ACK, a digit while talking,
    /// which the media task relays to the agent).
    Nothing,
    /// A report that crossed a phase change (a prompt cut short, a timer of the last phase).
    Late,
    /// Not possible in this phase from peers that follow the protocol: logged and counted.
    Unexpected,
    End {
        by: Side,
        code: u16,
    },
    /// The caller proved their address; `media_running`: early media already runs.
    Prove {
        media_running: bool,
    },
    /// A late offer's ACK: its SDP is the caller's answer.
    LateAnswer,
    MenuDigit(char),
    MenuPromptDone,
    /// No digit after the menu: replay it or give up to its default queue.
    MenuRetry,
    /// A digit from a caller in line (the queue's callback key, or nothing).
    QueueDigit(char),
    SurveyPromptDone,
    Rated(u8),
    /// The agent hung up a connected call (a survey may follow).
    AgentHungUp,
    /// A prompt over the hold music ended: the music again.
    HoldMusic,
    Announce(CallTimer),
    LookupTimedOut,
    /// The customer did not answer the callback in time.
    CallbackRingOut,
}

impl Phase {
    /// The phase's name, for logs and the unexpected-input report.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Phase::Answering { .. } => "answering",
            Phase::Routing => "routing",
            Phase::LookingUp { .. } => "looking up",
            Phase::Menu(_) => "menu",
            Phase::Waiting => "waiting",
            Phase::Ringing(_) => "ringing",
            Phase::Connected(_) => "connected",
            Phase::Survey { .. } => "survey",
            Phase::Away(_) => "away",
            Phase::LettingGo => "letting go",
        }
    }
}

impl Call {
    /// What `input` means for this call now. Changes the call only where the phase alone
    /// decides (a prompt over the music ended); everything that needs the dialplan, the ACD
    /// or the wire is the returned action's.
    pub(super) fn handle(&mut self, now: Instant, input: Input) -> Action {
        use Action as A;
        let _ = now; // the deadlines to compare come with the timer inputs
        let prompt = self.prompt_playing;
        let action = match (&self.phase, input) {
            // The caller is away: no caller leg, and their media was stopped when they left
            // (a report already on its way is late).
            (Phase::Away(cb), Input::Timer(CallTimer::CallbackRing, at)) => {
                if cb.dialing_until() == Some(at) {
                    A::CallbackRingOut
                } else {
                    A::Late
                }
            }
            (Phase::Away(cb), Input::Timer(CallTimer::Lookup, at)) => {
                if cb.lookup.map(|(_, until)| until) == Some(at) {
                    A::LookupTimedOut
                } else {
                    A::Late
                }
            }
            (
                Phase::Away(_),
                Input::Digit(_) | Input::PromptDone | Input::MediaTimeout | Input::MediaFailed,
            ) => A::Late,
            (Phase::Away(_), Input::Timer(..)) => A::Late,
            (Phase::Away(_), _) => A::Unexpected,

            // Every phase with a caller on the line.
            (_, Input::Cancel) => A::End {
                by: Side::Caller,
                code: 487,
            },
            (_, Input::CallerBye) => A::End {
                by: Side::Caller,
                code: 487,
            },
            (_, Input::MediaTimeout | Input::AckTimeout) => A::End {
                by: Side::System,
                code: 408,
            },
            (_, Input::MediaFailed) => A::End {
                by: Side::System,
                code: 503,
            },

            (Phase::Answering { late_offer }, Input::Ack) => {
                if *late_offer {
                    A::LateAnswer
                } else {
                    A::Prove {
                        media_running: false,
                    }
                }
            }
            // Early media runs (183); a late offer has no media to report from.
            (Phase::Answering { late_offer: false }, Input::CallerRtp) => A::Prove {
                media_running: true,
            },
            (Phase::Answering { .. }, Input::Timer(..)) => A::Late,
            (Phase::Answering { .. }, _) => A::Unexpected,

            // Proven: a retransmitted ACK, or the early-media RTP report after the ACK.
            (_, Input::Ack | Input::CallerRtp) => A::Nothing,
            (Phase::Connected(_), Input::AgentBye) => A::AgentHungUp,
            // The agent's dialog is gone in every other phase: its BYE gets a 481 before here.
            (_, Input::AgentBye) => A::Unexpected,

            (Phase::LookingUp { deadline, .. }, Input::Timer(CallTimer::Lookup, at)) => {
                if *deadline == at {
                    A::LookupTimedOut
                } else {
                    A::Late
                }
            }
            (Phase::Menu(_), Input::Digit(d)) => A::MenuDigit(d),
            (Phase::Menu(_), Input::PromptDone) => A::MenuPromptDone,
            (Phase::Menu(ivr), Input::Timer(CallTimer::MenuInput, at)) => {
                if ivr.deadline() == Some(at) {
                    A::MenuRetry
                } else {
                    A::Late
                }
            }
            (Phase::Waiting, Input::Digit(d)) => A::QueueDigit(d),
            (
                Phase::Waiting | Phase::Ringing(_),
                Input::Timer(t @ (CallTimer::Position | CallTimer::Message), _),
            ) => A::Announce(t),
            (Phase::Survey { .. }, Input::Digit(d)) => match d.to_digit(10) {
                Some(r @ 1..=5) => A::Rated(r as u8),
                _ => A::Nothing, // not a rating: keep waiting for one
            },
            (Phase::Survey { .. }, Input::PromptDone) => A::SurveyPromptDone,
            (Phase::Survey { deadline }, Input::Timer(CallTimer::SurveyInput, at)) => {
                if *deadline == Some(at) {
                    A::End {
                        by: Side::System,
                        code: 200,
                    }
                } else {
                    A::Late
                }
            }
            (Phase::LettingGo, Input::PromptDone) => A::End {
                by: Side::System,
                code: 480,
            },
            // A rule's prompt or an announcement over the hold music.
            (
                Phase::Routing | Phase::LookingUp { .. } | Phase::Waiting | Phase::Ringing(_),
                Input::PromptDone,
            ) if prompt => A::HoldMusic,
            // Keys pressed during the welcome, while an agent's phone rings, while talking
            // (relayed to the agent by the media task) or while being let go.
            (
                Phase::Routing
                | Phase::LookingUp { .. }
                | Phase::Ringing(_)
                | Phase::Connected(_)
                | Phase::LettingGo,
                Input::Digit(_),
            ) => A::Nothing,
            // A prompt cut short by what came next (the bridge, hold music, the next menu).
            (_, Input::PromptDone) => A::Late,
            (_, Input::Timer(..)) => A::Late,
        };
        if action == A::HoldMusic {
            self.prompt_playing = false;
        }
        action
    }

    /// The caller has proven their address.
    pub(super) fn validated(&self) -> bool {
        !matches!(self.phase, Phase::Answering { .. })
    }

    /// The caller left for a callback and is not on the line.
    pub(super) fn away(&self) -> bool {
        matches!(self.phase, Phase::Away(_))
    }

    pub(super) fn talk(&self) -> Option<&Talk> {
        match &self.phase {
            Phase::Connected(t) => Some(t),
            _ => None,
        }
    }

    pub(super) fn talk_mut(&mut self) -> Option<&mut Talk> {
        match &mut self.phase {
            Phase::Connected(t) => Some(t),
            _ => None,
        }
    }

    /// The agents' phones ringing for this call.
    pub(super) fn ringing(&self) -> &[AgentLeg] {
        match &self.phase {
            Phase::Ringing(legs) => legs,
            _ => &[],
        }
    }
}
