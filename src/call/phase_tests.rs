//! Every input in every phase of [`Call::handle`], with a fake clock and no manager: what a
//! digit, a prompt's end, a BYE or a timer means depends on the phase alone, and an input a
//! phase does not expect is reported (`Unexpected`), never silently taken as something else.

use super::agent_leg::AgentLeg;
use super::callback::Callback;
use super::ivr::IvrState;
use super::manager::{Call, CallerLeg};
use super::phase::{Action, CallTimer, Input, Phase, Talk};
use crate::events::Side;
use crate::sip::dialog::Dialog;
use crate::sip::transaction::{Peer, Transport, TxKey};
use std::time::{Duration, Instant};

const INVITE: &str = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK1\r\n\
From: <sip:+15550001@127.0.0.1>;tag=c1\r\n\
To: <sip:100@127.0.0.1>\r\n\
Call-ID: phase-test\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:5000>\r\n\
Content-Length: 0\r\n\r\n";

fn peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "127.0.0.1:5000".parse().expect("address"),
    }
}

fn invite() -> crate::sip::msg::Request {
    super::snapshot::parse_request(INVITE).expect("the test INVITE parses")
}

fn leg(agent: &str) -> AgentLeg {
    let invite = invite();
    AgentLeg {
        agent: agent.to_string(),
        uac: super::uac::UacLeg::calling(invite.clone(), TxKey::server(&invite), peer()),
        srtp: None,
        media: None,
        origin: crate::sdp::Origin::new(),
    }
}

fn call(phase: Phase, t0: Instant) -> Call {
    let invite = invite();
    Call {
        span: tracing::Span::none(),
        caller_number: "+15550001".into(),
        queue: "sales".into(),
        caller: CallerLeg {
            invite_key: TxKey::server(&invite),
            invite_text: Default::default(),
            dialog: Dialog::as_uas(&invite, "ours", peer()),
            invite,
            sdp: Default::default(),
            answered: true,
            session: None,
            prack: None,
        },
        phase,
        media: crate::sdp::Negotiated {
            remote: "127.0.0.1:6000".parse().expect("address"),
            codec: crate::sdp::Codec::Pcmu,
            codec_pt: 0,
            dtmf_pt: Some(101),
            direction: crate::sdp::Direction::SendRecv,
            srtp: None,
        },
        caller_key: None,
        priority: 0,
        caller_port: 20000,
        agent_port: 20002,
        arrived: t0,
        sdp_session: 1,
        sdp_version: 1,
        context: None,
        dialed: "100".into(),
        route: None,
        prompt_playing: false,
        caller_learned: None,
        interaction: "test-1".into(),
        transfers: 0,
        notes: Vec::new(),
        called_back: None,
        identity: super::Identity {
            number: "+15550001".into(),
            trusted: false,
            basis: "From".into(),
        },
        source: None,
    }
}

/// The deadline every phase that keeps one is given, and a time that is not it.
fn due(t0: Instant) -> Instant {
    t0 + Duration::from_secs(5)
}

/// One call in each phase, with its name in the table below.
fn phases(t0: Instant) -> Vec<(&'static str, Phase)> {
    let at = due(t0);
    vec![
        ("answering", Phase::Answering { late_offer: false }),
        ("late offer", Phase::Answering { late_offer: true }),
        ("routing", Phase::Routing),
        (
            "looking up",
            Phase::LookingUp {
                started: t0,
                deadline: at,
            },
        ),
        (
            "menu",
            Phase::Menu(IvrState {
                menu: "main".into(),
                retries_left: 2,
                deadline: Some(at),
            }),
        ),
        ("waiting", Phase::Waiting),
        ("ringing", Phase::Ringing(vec![leg("alice"), leg("bob")])),
        (
            "connected",
            Phase::Connected(Box::new(Talk {
                agent: leg("alice"),
                since: t0,
                held: false,
                srtp: None,
                learned: None,
            })),
        ),
        ("survey", Phase::Survey { deadline: Some(at) }),
        (
            "away",
            Phase::Away(Box::new(Callback::dialing(leg("cust").uac, at))),
        ),
        ("letting go", Phase::LettingGo),
    ]
}

/// The inputs, each with its column name.
fn inputs(t0: Instant) -> Vec<(&'static str, Input)> {
    let at = due(t0);
    let early = t0 + Duration::from_secs(1);
    let mut v = vec![
        ("ack", Input::Ack),
        ("rtp", Input::CallerRtp),
        ("cancel", Input::Cancel),
        ("ack timeout", Input::AckTimeout),
        ("caller bye", Input::CallerBye),
        ("agent bye", Input::AgentBye),
        ("digit 3", Input::Digit('3')),
        ("digit #", Input::Digit('#')),
        ("prompt done", Input::PromptDone),
        ("media timeout", Input::MediaTimeout),
        ("media failed", Input::MediaFailed),
    ];
    for (name, t) in [
        ("menu timer", CallTimer::MenuInput),
        ("survey timer", CallTimer::SurveyInput),
        ("lookup timer", CallTimer::Lookup),
        ("callback timer", CallTimer::CallbackRing),
        ("position timer", CallTimer::Position),
        ("message timer", CallTimer::Message),
    ] {
        v.push((name, Input::Timer(t, at)));
        // The same timer armed for an earlier deadline (the phase moved it on since).
        v.push((name, Input::Timer(t, early)));
    }
    v
}

fn end(by: Side, code: u16) -> Action {
    Action::End { by, code }
}

/// What each phase makes of each input, in the order of [`inputs`]: every cell is checked.
fn expected(phase: &str) -> Vec<Action> {
    use Action::*;
    let caller_bye = end(Side::Caller, 487);
    let timeout = end(Side::System, 408);
    let failed = end(Side::System, 503);
    // The caller's own inputs that end any phase with a caller on the line.
    let on_line = |ack, rtp, agent_bye, d3, dh, prompt| {
        vec![
            ack, rtp, caller_bye, timeout, caller_bye, agent_bye, d3, dh, prompt, timeout, failed,
        ]
    };
    // Every timer late (a timer of another phase, or re-armed), unless listed.
    let timers = |live: &[(usize, Action)]| {
        let mut t = vec![Late; 12];
        for (i, a) in live {
            t[*i] = *a;
        }
        t
    };
    let (mut row, tail) = match phase {
        "answering" => (
            on_line(
                Prove {
                    media_running: false,
                },
                Prove {
                    media_running: true,
                },
                Unexpected,
                Unexpected,
                Unexpected,
                Unexpected,
            ),
            timers(&[]),
        ),
        "late offer" => (
            on_line(
                LateAnswer, Unexpected, Unexpected, Unexpected, Unexpected, Unexpected,
            ),
            timers(&[]),
        ),
        "routing" => (
            on_line(Nothing, Nothing, Unexpected, Nothing, Nothing, Late),
            timers(&[]),
        ),
        "looking up" => (
            on_line(Nothing, Nothing, Unexpected, Nothing, Nothing, Late),
            timers(&[(4, LookupTimedOut)]),
        ),
        "menu" => (
            on_line(
                Nothing,
                Nothing,
                Unexpected,
                MenuDigit('3'),
                MenuDigit('#'),
                MenuPromptDone,
            ),
            timers(&[(0, MenuRetry)]),
        ),
        "waiting" => (
            on_line(
                Nothing,
                Nothing,
                Unexpected,
                QueueDigit('3'),
                QueueDigit('#'),
                Late,
            ),
            timers(&[
                (8, Announce(CallTimer::Position)),
                (9, Announce(CallTimer::Position)),
                (10, Announce(CallTimer::Message)),
                (11, Announce(CallTimer::Message)),
            ]),
        ),
        "ringing" => (
            on_line(Nothing, Nothing, Unexpected, Nothing, Nothing, Late),
            timers(&[
                (8, Announce(CallTimer::Position)),
                (9, Announce(CallTimer::Position)),
                (10, Announce(CallTimer::Message)),
                (11, Announce(CallTimer::Message)),
            ]),
        ),
        "connected" => (
            on_line(Nothing, Nothing, AgentHungUp, Nothing, Nothing, Late),
            timers(&[]),
        ),
        "survey" => (
            on_line(
                Nothing,
                Nothing,
                Unexpected,
                Rated(3),
                Nothing,
                SurveyPromptDone,
            ),
            timers(&[(2, end(Side::System, 200))]),
        ),
        // Nobody on the line: the caller's SIP inputs cannot come, media reports are late.
        "away" => (
            vec![
                Unexpected, Unexpected, Unexpected, Unexpected, Unexpected, Unexpected, Late, Late,
                Late, Late, Late,
            ],
            timers(&[(6, CallbackRingOut)]),
        ),
        "letting go" => (
            on_line(
                Nothing,
                Nothing,
                Unexpected,
                Nothing,
                Nothing,
                end(Side::System, 480),
            ),
            timers(&[]),
        ),
        other => panic!("no row for phase {other}"),
    };
    row.extend(tail);
    row
}

#[test]
fn every_input_in_every_phase_has_one_meaning() {
    let t0 = Instant::now();
    let mut wrong = Vec::new();
    for (name, _) in phases(t0) {
        let want = expected(name);
        let inputs = inputs(t0);
        assert_eq!(want.len(), inputs.len(), "row {name} covers every input");
        for ((input_name, input), want) in inputs.into_iter().zip(want) {
            // A fresh call per cell: an input must not depend on the one before it.
            let phase = phases(t0)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| p)
                .expect("phase");
            let mut c = call(phase, t0);
            let got = c.handle(due(t0), input);
            if got != want {
                wrong.push(format!(
                    "{name} + {input_name} ({input:?}): got {got:?}, want {want:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_prompt_over_the_music_gives_the_music_back_once() {
    let t0 = Instant::now();
    for phase in [
        Phase::Routing,
        Phase::Waiting,
        Phase::Ringing(vec![leg("a")]),
    ] {
        let mut c = call(phase, t0);
        c.prompt_playing = true;
        assert_eq!(c.handle(t0, Input::PromptDone), Action::HoldMusic);
        assert!(!c.prompt_playing, "the music plays again");
        assert_eq!(
            c.handle(t0, Input::PromptDone),
            Action::Late,
            "a second end of the same prompt"
        );
    }
    // Anything else leaves the prompt playing.
    let mut c = call(Phase::Waiting, t0);
    c.prompt_playing = true;
    assert_eq!(c.handle(t0, Input::Digit('5')), Action::QueueDigit('5'));
    assert!(c.prompt_playing);
}

#[test]
fn a_survey_rates_one_to_five_and_ignores_other_keys() {
    let t0 = Instant::now();
    let mut c = call(Phase::Survey { deadline: None }, t0);
    for (key, want) in [
        ('0', Action::Nothing),
        ('1', Action::Rated(1)),
        ('5', Action::Rated(5)),
        ('6', Action::Nothing),
        ('*', Action::Nothing),
    ] {
        assert_eq!(c.handle(t0, Input::Digit(key)), want, "key {key}");
    }
    // Before the prompt ended nothing is armed: a survey timer is someone else's.
    let at = due(t0);
    assert_eq!(
        c.handle(at, Input::Timer(CallTimer::SurveyInput, at)),
        Action::Late
    );
}

#[test]
fn a_restored_callback_looks_up_its_caller_while_the_customer_is_away() {
    let t0 = Instant::now();
    let until = t0 + Duration::from_millis(300);
    let mut cb = Callback::dialing(leg("cust").uac, due(t0));
    cb.lookup = Some((t0, until));
    let mut c = call(Phase::Away(Box::new(cb)), t0);
    assert_eq!(
        c.handle(until, Input::Timer(CallTimer::Lookup, until)),
        Action::LookupTimedOut
    );
    assert_eq!(
        c.handle(until, Input::Timer(CallTimer::Lookup, t0)),
        Action::Late
    );
}

#[test]
fn the_accessors_follow_the_phase() {
    let t0 = Instant::now();
    for (name, phase) in phases(t0) {
        let c = call(phase, t0);
        assert_eq!(c.phase.name(), name.replace("late offer", "answering"));
        assert_eq!(
            c.validated(),
            !name.contains("answering") && name != "late offer"
        );
        assert_eq!(c.away(), name == "away");
        assert_eq!(c.talk().is_some(), name == "connected");
        assert_eq!(c.ringing().len(), if name == "ringing" { 2 } else { 0 });
    }
}
