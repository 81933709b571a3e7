//! Phones nobody on the project wrote, talking through acd the way a centre's callers and
//! agents do, with what each one *heard* checked (the dominant frequency of its recording),
//! not just packet counts.

mod common;

use common::baresip::{heard, spawn_at, Phone};
use common::*;
use common::{linphone, pjsua2, tone};
use std::time::Duration;

/// A clean sine within 5 % of `want` Hz (G.711 quantisation leaves it > 90 % pure; the wrong
/// law, or a mix with prompts, does not).
fn clean_tone(got: Option<(f64, f64)>, want: f64) -> bool {
    got.is_some_and(|(hz, purity)| (hz - want).abs() < want * 0.05 && purity > 0.9)
}

/// A baresip caller sending a `hz` sine and recording, dialling 200 and hanging up after
/// `seconds`.
fn baresip_caller(srv: &TestServer, hz: u32, seconds: &str) -> tokio::process::Child {
    let caller = Phone {
        tone_hz: Some(hz),
        record: true,
        ..Phone::default()
    };
    let dial = format!("/dial sip:200@{}", srv.sip());
    spawn_at(
        srv.dir.path(),
        srv.sip(),
        "caller",
        &caller,
        false,
        &["-e", &dial, "-t", seconds],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pcma_only_caller_and_a_pcmu_only_agent_hear_each_others_tone() {
    let srv = start(None, |_| {}).await;
    let base = srv.dir.path();
    let agent = Phone {
        codecs: Some("PCMU"),
        tone_hz: Some(1000),
        record: true,
        ..Phone::default()
    };
    let _agent = spawn_at(base, srv.sip(), "1002", &agent, true, &[]);
    srv.wait_for("baresip 1002 registered", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let caller = Phone {
        codecs: Some("PCMA"),
        tone_hz: Some(440),
        record: true,
        ..Phone::default()
    };
    let dial = format!("/dial sip:200@{}", srv.sip());
    let mut call = spawn_at(
        base,
        srv.sip(),
        "caller",
        &caller,
        false,
        &["-e", &dial, "-t", "8"],
    );
    let s = srv
        .wait_for("3 s of audio both ways", Duration::from_secs(15), |s| {
            s.media.relayed_to_agent > 150 && s.media.relayed_to_caller > 150
        })
        .await;
    assert!(
        TestServer::agent_state(&s, "1002").starts_with("Busy"),
        "{:?}",
        s.status
    );
    let _ = tokio::time::timeout(Duration::from_secs(15), call.wait()).await;
    let logs = || {
        ["1002", "caller"]
            .map(|u| {
                std::fs::read_to_string(base.join(format!("baresip-{u}.log"))).unwrap_or_default()
            })
            .join("\n----\n")
    };
    let (at_agent, at_caller) = (heard(base, "1002", 1.0), heard(base, "caller", 1.0));
    assert!(
        clean_tone(at_agent, 440.0),
        "the agent heard {at_agent:?} (Hz, purity)\n{}",
        logs()
    );
    assert!(
        clean_tone(at_caller, 1000.0),
        "the caller heard {at_caller:?} (Hz, purity)\n{}",
        logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsua2_agent_and_a_baresip_caller_hear_each_other_through_a_hold_and_resume() {
    let srv = start(None, |_| {}).await;
    let base = srv.dir.path();
    let wav = base.join("pjsua2-heard.wav");
    let wav_arg = wav.display().to_string();
    let (_agent, log) = pjsua2::spawn(
        base,
        srv.sip(),
        "1002",
        &[
            "--register",
            "--tone",
            "1000",
            "--record",
            &wav_arg,
            "--hold-at",
            "1",
            "--resume-after",
            "1",
            "--seconds",
            "20",
        ],
    );
    pjsua2::wait_line(&log, "registered", Duration::from_secs(15)).await;
    srv.wait_for("pjsua2 1002 in the queue", Duration::from_secs(5), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let mut call = baresip_caller(&srv, 440, "7");
    pjsua2::wait_line(&log, "connected", Duration::from_secs(10)).await;
    pjsua2::wait_line(&log, "resumed", Duration::from_secs(10)).await;
    let _ = tokio::time::timeout(Duration::from_secs(15), call.wait()).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // What the caller heard last (after the resume) is the agent's tone; the agent hears the
    // caller's.
    let at_caller = heard(base, "caller", 1.0);
    assert!(
        clean_tone(at_caller, 1000.0),
        "the caller heard {at_caller:?} (Hz, purity)\n{text}"
    );
    pjsua2::wait_line(&log, "ended 200", Duration::from_secs(10)).await;
    let at_agent = tone::heard_when_written(&wav, 1.0, Duration::from_secs(5)).await;
    assert!(
        clean_tone(at_agent, 440.0),
        "the agent heard {at_agent:?} (Hz, purity)\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_digits_reach_a_pjsua2_agent_after_its_hold_and_resume() {
    let srv = start(None, |_| {}).await;
    let base = srv.dir.path();
    let (_agent, log) = pjsua2::spawn(
        base,
        srv.sip(),
        "1002",
        &[
            "--register",
            "--hold-at",
            "0.5",
            "--resume-after",
            "0.5",
            "--seconds",
            "20",
        ],
    );
    pjsua2::wait_line(&log, "registered", Duration::from_secs(15)).await;
    srv.wait_for("pjsua2 1002 in the queue", Duration::from_secs(5), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let call = caller(&srv, "caller_talk_digit.xml", "200", 1500, 1);
    pjsua2::wait_line(&log, "resumed", Duration::from_secs(10)).await;
    call.success(Duration::from_secs(20)).await;
    pjsua2::wait_line(&log, "ended 200", Duration::from_secs(10)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(pjsua2::digits(&log), "1", "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linphone_agent_and_a_baresip_caller_hear_each_other() {
    let srv = start(None, |_| {}).await;
    let base = srv.dir.path();
    let wav = base.join("linphone-heard.wav");
    let agent = linphone::spawn(base, srv.sip(), "1002", 1000.0, &wav, Some(600)).await;
    srv.wait_for("linphone 1002 registered", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let mut call = baresip_caller(&srv, 440, "7");
    srv.wait_for("linphone answered", Duration::from_secs(10), |s| {
        TestServer::agent_state(s, "1002").starts_with("Busy")
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(15), call.wait()).await;
    srv.wait_for("the call ended", Duration::from_secs(10), |s| {
        s.status.calls == 0
    })
    .await;
    let at_caller = heard(base, "caller", 1.0);
    assert!(
        clean_tone(at_caller, 1000.0),
        "the caller heard {at_caller:?} (Hz, purity)\n{}",
        agent.output()
    );
    let at_agent = tone::heard_when_written(&wav, 1.0, Duration::from_secs(5)).await;
    assert!(
        clean_tone(at_agent, 440.0),
        "the agent heard {at_agent:?} (Hz, purity)\n{}",
        agent.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_old_phone_died_is_reached_on_the_new_one_at_once() {
    let srv = start(None, |_| {}).await;
    let base = srv.dir.path();
    // linphone registers for 600 s and dies without un-registering.
    let mut old = linphone::spawn(
        base,
        srv.sip(),
        "1002",
        1000.0,
        &base.join("old.wav"),
        Some(600),
    )
    .await;
    srv.wait_for("linphone 1002 registered", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    old.child.kill().await.unwrap();
    // The agent's new phone, pjsua2, registers for 300 s.
    let (_new, log) = pjsua2::spawn(
        base,
        srv.sip(),
        "1002",
        &["--register", "--tone", "1000", "--seconds", "20"],
    );
    pjsua2::wait_line(&log, "registered", Duration::from_secs(15)).await;
    // Both bindings ring; the live phone answers and the call is bridged.
    let call = caller(&srv, "caller.xml", "200", 1500, 1);
    pjsua2::wait_line(&log, "connected", Duration::from_secs(10)).await;
    call.success(Duration::from_secs(20)).await;
    // (The dead phone's INVITE is left to time out: it never answered, so no CANCEL.)
    let s = srv
        .wait_for("the call over", Duration::from_secs(10), |s| {
            s.status.calls == 0
        })
        .await;
    assert_eq!(s.status.totals.connected, 1, "{:?}", s.status);
    assert!(s.media.relayed_to_caller > 20, "{:?}", s.media);
}

/// sales behind a menu on 100 (1: sales, 2: support); support on 200 answers with early media.
const MENU_AND_EARLY: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
[[queue]]
name = "support"
skill = "support"
answer = "early-media"
[[number]]
dial = "100"
queue = "sales"
menu = "main"
[[number]]
dial = "200"
queue = "support"
[[menu]]
name = "main"
timeout_s = 10
default = "sales"
options = { "1" = "sales", "2" = "support" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsua2_caller_picks_support_in_the_menu_and_talks_to_a_linphone_agent() {
    let srv = start(Some(MENU_AND_EARLY), |_| {}).await;
    let mut events = srv.running.core.events.subscribe();
    let base = srv.dir.path();
    let at_agent_wav = base.join("linphone-heard.wav");
    let agent = linphone::spawn(base, srv.sip(), "1002", 1000.0, &at_agent_wav, Some(600)).await;
    srv.wait_for("linphone 1002 registered", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let at_caller_wav = base.join("pjsua2-caller-heard.wav");
    let rec = at_caller_wav.display().to_string();
    let (_caller, log) = pjsua2::spawn(
        base,
        srv.sip(),
        "caller",
        &[
            "--dial",
            "100",
            "--tone",
            "440",
            "--record",
            &rec,
            "--dtmf",
            "2",
            "--seconds",
            "7",
        ],
    );
    pjsua2::wait_line(&log, "ended 200", Duration::from_secs(20)).await;
    let seen: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| match e {
            acd::events::Event::MenuChoice { digit, queue, .. } => {
                Some(format!("choice {digit:?} {queue:?}"))
            }
            acd::events::Event::Connected { agent, .. } => Some(format!("connected {agent}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        vec!["choice Some('2') Some(\"support\")", "connected 1002"],
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let at_caller = tone::heard_when_written(&at_caller_wav, 1.0, Duration::from_secs(5)).await;
    assert!(
        clean_tone(at_caller, 1000.0),
        "the caller heard {at_caller:?}"
    );
    let at_agent = tone::heard_when_written(&at_agent_wav, 1.0, Duration::from_secs(5)).await;
    assert!(
        clean_tone(at_agent, 440.0),
        "the agent heard {at_agent:?}\n{}",
        agent.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsua2_caller_requiring_100rel_and_timers_reaches_a_baresip_agent_on_early_media() {
    let srv = start(Some(MENU_AND_EARLY), |_| {}).await;
    let base = srv.dir.path();
    let agent = Phone {
        tone_hz: Some(1000),
        record: true,
        ..Phone::default()
    };
    let _agent = spawn_at(base, srv.sip(), "1002", &agent, true, &[]);
    srv.wait_for("baresip 1002 registered", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let wav = base.join("pjsua2-caller-heard.wav");
    let rec = wav.display().to_string();
    let (_caller, log) = pjsua2::spawn(
        base,
        srv.sip(),
        "caller",
        &[
            "--dial",
            "200",
            "--tone",
            "440",
            "--record",
            &rec,
            "--require-100rel-timer",
            "--seconds",
            "6",
        ],
    );
    pjsua2::wait_line(&log, "connected", Duration::from_secs(10)).await;
    pjsua2::wait_line(&log, "ended 200", Duration::from_secs(20)).await;
    let at_caller = tone::heard_when_written(&wav, 1.0, Duration::from_secs(5)).await;
    assert!(
        clean_tone(at_caller, 1000.0),
        "the caller heard {at_caller:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let at_agent = heard(base, "1002", 1.0);
    assert!(clean_tone(at_agent, 440.0), "the agent heard {at_agent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linphone_callers_digit_reaches_a_pjsua2_agent_after_its_hold_and_resume() {
    let srv = start(None, |_| {}).await;
    let base = srv.dir.path();
    let agent_wav = base.join("pjsua2-heard.wav");
    let rec = agent_wav.display().to_string();
    let (_agent, log) = pjsua2::spawn(
        base,
        srv.sip(),
        "1002",
        &[
            "--register",
            "--tone",
            "1000",
            "--record",
            &rec,
            "--hold-at",
            "1",
            "--resume-after",
            "1",
            "--seconds",
            "20",
        ],
    );
    pjsua2::wait_line(&log, "registered", Duration::from_secs(15)).await;
    srv.wait_for("pjsua2 1002 in the queue", Duration::from_secs(5), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let caller_wav = base.join("linphone-caller-heard.wav");
    let mut caller = linphone::spawn(base, srv.sip(), "caller", 440.0, &caller_wav, None).await;
    caller.command(&format!("call sip:200@{}", srv.sip())).await;
    pjsua2::wait_line(&log, "resumed", Duration::from_secs(15)).await;
    // After the agent's hold and resume (its re-INVITE offers telephone-event at 16000 and
    // 8000 Hz), the caller presses 5.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    caller.command("5").await;
    pjsua2::wait_line(&log, "dtmf 5", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    caller.command("terminate").await;
    pjsua2::wait_line(&log, "ended 200", Duration::from_secs(10)).await;
    let at_caller = tone::heard_when_written(&caller_wav, 0.5, Duration::from_secs(5)).await;
    assert!(
        clean_tone(at_caller, 1000.0),
        "the caller heard {at_caller:?}\n{}",
        caller.output()
    );
    let at_agent = tone::heard_best(&agent_wav, 0.5);
    assert!(clean_tone(at_agent, 440.0), "the agent heard {at_agent:?}");
}
