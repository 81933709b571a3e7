//! ACD depth end to end with SIPp: an agent who lets a call ring out is skipped and paused, a
//! caller who waits too long overflows to another queue, a waiting caller hears their position,
//! and a caller who asks for a callback is called back and bridged to an agent.

mod common;

use common::caller;
use common::{agent, ports, sipp, sipp_on, start, TestServer};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_call_goes_to_the_next_agent_and_the_silent_one_is_paused() {
    let plan = r#"
[[queue]]
name = "sales"
skill = "sales"
ring_timeout_s = 2
autopause_after = 1
[[number]]
dial = "100"
queue = "sales"
"#;
    let srv = start(Some(plan), |_| {}).await;
    // Anna registered first (idle longest) but never answers; Chloe does.
    let anna = agent(&srv, "1001", "agent_noanswer.xml", 1, false).await;
    let chloe = agent(&srv, "1003", "agent_answer.xml", 1, false).await;
    caller(&srv, "caller.xml", "100", 4000, 1)
        .success(Duration::from_secs(30))
        .await;
    anna.success(Duration::from_secs(10)).await; // rang, then got CANCEL
    chloe.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    let a = s.agents.iter().find(|a| a.id == "1001").unwrap();
    assert_eq!(TestServer::agent_state(&s, "1001"), "Paused");
    assert_eq!(a.reason.as_deref(), Some("missed a call"));
    assert_eq!(s.status.totals.connected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_waits_too_long_overflows_to_the_backup_queue() {
    let plan = r#"
[[queue]]
name = "sales"
skill = "sales"
max_wait_s = 2
overflow = "support"
[[queue]]
name = "support"
skill = "support"
[[number]]
dial = "100"
queue = "sales"
"#;
    let srv = start(Some(plan), |_| {}).await;
    // Nobody with sales is there; Ben (support) is.
    let ben = agent(&srv, "1002", "agent_answer.xml", 1, false).await;
    let mut events = srv.running.core.events.subscribe();
    caller(&srv, "caller.xml", "100", 4000, 1)
        .success(Duration::from_secs(30))
        .await;
    ben.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let mut overflow = None;
    let mut connected_after = None;
    while let Ok(ev) = events.try_recv() {
        match ev {
            acd::events::Event::Overflow { from, to, .. } => overflow = Some((from, to)),
            acd::events::Event::Connected { agent, wait_ms, .. } => {
                connected_after = Some((agent, wait_ms))
            }
            _ => {}
        }
    }
    assert_eq!(overflow, Some(("sales".into(), "support".into())));
    let (agent, wait_ms) = connected_after.expect("connected");
    assert_eq!(agent, "1002");
    assert!(wait_ms >= 2000, "only after the maximum wait: {wait_ms} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_hears_their_position() {
    let plan = r#"
[[queue]]
name = "sales"
skill = "sales"
announce_position_s = 1
announce_every_s = 30
announce_voice = "../prompts/en"
[[number]]
dial = "100"
queue = "sales"
"#;
    let srv = start(Some(plan), |_| {}).await;
    // The caller's RTP goes to a socket of ours: we hear what acd plays them.
    let ear = tokio::net::UdpSocket::bind(("127.0.0.1", ports(2)))
        .await
        .unwrap();
    let rtp_port = ear.local_addr().unwrap().port().to_string();
    let listening = tokio::spawn(async move {
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), ear.recv(&mut buf)).await
        {
            if n > 12 {
                payloads.push(buf[12..n].to_vec());
            }
        }
        payloads
    });
    // Nobody is there to answer: the caller listens 8 s and hangs up.
    let mut events = srv.running.core.events.subscribe();
    sipp(
        srv.sip(),
        srv.dir.path(),
        "caller_listens.xml",
        &[
            "-s",
            "100",
            "-key",
            "caller",
            "+15551234567",
            "-key",
            "rtp_port",
            &rtp_port,
            "-d",
            "8000",
            "-m",
            "1",
        ],
    )
    .success(Duration::from_secs(30))
    .await;
    let s = srv.wait_idle().await;
    let mut heard = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let acd::events::Event::Announcement {
            position, wait_s, ..
        } = ev
        {
            heard.push((position, wait_s));
        }
    }
    assert_eq!(
        heard,
        vec![(1, 180)],
        "one announcement: first in line, ~3 min by default"
    );
    assert!(s.media.once_frames >= 50, "{:?}", s.media);
    // What reached the caller holds the spoken announcement, frame for frame, in order:
    // "you are caller number one … your expected wait is about three minutes".
    let voice = acd::media::voice::Voice::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en"),
    )
    .unwrap();
    let said = acd::media::prompt::Prompt::from_pcm(&voice.position_announcement(1, 3));
    let want: Vec<&[u8]> = said
        .frames(acd::sdp::Codec::Pcma)
        .iter()
        .map(|f| &f[..])
        .collect();
    let got = listening.await.unwrap();
    let start = got
        .iter()
        .position(|p| p.as_slice() == want[0])
        .expect("the announcement's first frame reached the caller");
    let run = got[start..]
        .iter()
        .zip(&want)
        .take_while(|(g, w)| g.as_slice() == **w)
        .count();
    assert_eq!(
        run,
        want.len(),
        "all {} frames of the announcement, in order (got {} packets)",
        want.len(),
        got.len()
    );
}

/// Callers come from a trunk on loopback: their numbers are vouched for, so they may be
/// called back (a caller nobody vouches for may not: SECURITY.md).
fn from_trunk(c: &mut acd::config::Config) {
    c.trunk = vec![acd::call::Trunk {
        name: "carrier".into(),
        addresses: vec![acd::sip::budget::Cidr::parse("127.0.0.1").unwrap()],
        username: None,
        password: None,
    }];
}

/// Runs one callback: the caller presses 1 and is let go; Anna registers; the customer's phone
/// (a SIPp at `customer_port`) rings, answers, and Anna is rung and bridged; she hangs up.
/// Returns the call's events in order, by kind.
async fn callback_call(plan: &str, customer_port: u16) -> (Vec<String>, TestServer) {
    let srv = start(Some(plan), from_trunk).await;
    let mut events = srv.running.core.events.subscribe();
    let customer = sipp_on(
        customer_port,
        srv.sip(),
        srv.dir.path(),
        "customer_answer.xml",
        &["-m", "1"],
    );
    // The caller is let go (BYE from acd) but keeps their place in the queue.
    ask_for_callback(&srv, customer_port).await;
    let s = srv.status().await;
    assert_eq!(s.status.acd_calls, 1, "the callback still waits in line");
    assert_eq!(
        s.queues[0].callbacks, 1,
        "and shows as one on the wallboard"
    );
    let metrics = acd::desk::metrics::render(&Default::default(), &s);
    assert!(
        metrics.contains("acd_queue_callbacks{queue=\"sales\"} 1"),
        "{metrics}"
    );
    // An agent comes: the customer is called first, then the agent, then they talk.
    let anna = agent(&srv, "1001", "agent_hangup.xml", 1, true).await;
    customer.success(Duration::from_secs(30)).await;
    anna.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let mut kinds = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let acd::events::Event::Offered { pop, .. } = &ev {
            assert!(
                pop.callback_waited_s.is_some(),
                "the agent's pop says it is a callback"
            );
        }
        let v = serde_json::to_value(&ev).unwrap();
        let kind = v["type"].as_str().unwrap_or("").to_string();
        if ev.call().is_some() && kind != "dtmf" && kind != "context_lookup" {
            kinds.push(kind);
        }
    }
    (kinds, srv)
}

/// A SIPp caller dials 100, presses 1 and is let go; its Contact names `customer_port`.
async fn ask_for_callback(srv: &TestServer, customer_port: u16) {
    let port = customer_port.to_string();
    let who = sipp(
        srv.sip(),
        srv.dir.path(),
        "caller_callback.xml",
        &[
            "-s",
            "100",
            "-key",
            "caller",
            "+15551234567",
            "-key",
            "contact_port",
            &port,
            "-m",
            "1",
        ],
    );
    who.success(Duration::from_secs(20)).await;
}

/// Waits until the database holds `n` saved callbacks.
async fn saved_callbacks(store: &acd::context::Store, n: usize) {
    for _ in 0..100 {
        if store.load_callbacks().await.unwrap().len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} saved callbacks");
}

const CALLBACK_PLAN: &str = r#"
[callback]
dial_timeout_s = 10
TRUNK
[[queue]]
name = "sales"
skill = "sales"
callback_key = "1"
[[number]]
dial = "100"
queue = "sales"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_asks_for_a_callback_is_called_through_the_trunk_and_bridged_to_an_agent() {
    let customer_port = ports(1);
    let plan = CALLBACK_PLAN.replace("TRUNK", &format!("trunk = \"127.0.0.1:{customer_port}\""));
    let (kinds, srv) = callback_call(&plan, customer_port).await;
    let order: Vec<&str> = kinds
        .iter()
        .map(String::as_str)
        .filter(|k| k.starts_with("callback") || ["offered", "connected", "ended"].contains(k))
        .collect();
    assert_eq!(
        order,
        [
            "callback_requested",
            "callback_dialing",
            "callback_answered",
            "offered",
            "connected",
            "ended"
        ],
        "all events: {kinds:?}"
    );
    let s = srv.status().await;
    assert_eq!(s.status.totals.connected, 1);
    assert_eq!(
        s.status.totals.abandoned, 0,
        "a callback is not an abandoned call"
    );
    assert!(
        s.media.relayed_to_agent > 10,
        "the customer's voice reached the agent: {:?}",
        s.media
    );
    // The queue report counts the callback (from the history the writer keeps).
    let now = acd::context::time::unix_now();
    let mut counted = None;
    for _ in 0..100 {
        let r = acd::report::queues::report(
            &srv.running.store,
            now - 3600,
            now + 60,
            Default::default(),
        )
        .await
        .unwrap();
        if r.total.calls == 1 {
            counted = Some((r.total.callbacks, r.total.answered));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(counted, Some((1, 1)), "one call, a callback, answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trunk_the_callback_goes_to_the_contact_of_the_callers_own_call() {
    let customer_port = ports(1);
    let (kinds, _srv) = callback_call(&CALLBACK_PLAN.replace("TRUNK", ""), customer_port).await;
    assert!(
        kinds.contains(&"callback_answered".to_string()) && kinds.contains(&"ended".to_string()),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_promised_before_a_restart_is_still_made_after_it() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/acd.db", db.path().display());
    let customer_port = ports(1);
    let plan = CALLBACK_PLAN.replace("TRUNK", &format!("trunk = \"127.0.0.1:{customer_port}\""));
    let first = start(Some(&plan), |c| {
        from_trunk(c);
        c.database.url = url.clone()
    })
    .await;
    ask_for_callback(&first, customer_port).await;
    saved_callbacks(&first.running.store, 1).await;
    // The grant is counted in the database too, so the day's caps survive the restart.
    let day = acd::context::time::unix_now().div_euclid(86_400);
    let grants = common::eventually("the grant in the database", || async {
        let g = first.running.store.callback_grants(day).await.unwrap();
        (!g.is_empty()).then_some(g)
    })
    .await;
    assert_eq!(grants, vec![("+15551234567".to_string(), 1)]);
    // A clean stop (SIGTERM) keeps the promise in the database.
    first.running.core.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    saved_callbacks(&first.running.store, 1).await;

    let second = start(Some(&plan), |c| {
        from_trunk(c);
        c.database.url = url.clone()
    })
    .await;
    let customer = sipp_on(
        customer_port,
        second.sip(),
        second.dir.path(),
        "customer_answer.xml",
        &["-m", "1"],
    );
    let anna = agent(&second, "1001", "agent_hangup.xml", 1, true).await;
    customer.success(Duration::from_secs(30)).await;
    anna.success(Duration::from_secs(10)).await;
    second.wait_idle().await;
    // Kept, then deleted once the customer and the agent have talked.
    saved_callbacks(&second.running.store, 0).await;
    assert_eq!(second.status().await.status.totals.connected, 1);
}
