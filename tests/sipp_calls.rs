//! Whole calls with real SIPp peers: a caller with audio, agents that register with digest and
//! answer (echoing RTP), hang up, never answer, or are busy. Each test ends with nothing left.

mod common;

use common::*;
use std::time::Duration;

const QUICK_PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
ring_timeout_s = 2
retry_s = 30

[[queue]]
name = "support"
skill = "support"
answer = "early-media"

[[number]]
dial = "100"
queue = "sales"

[[number]]
dial = "200"
queue = "support"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_is_bridged_to_a_registered_agent_and_rtp_flows_both_ways() {
    let srv = start(None, |_| {}).await;
    let agent = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 3000, 1);
    let s = srv
        .wait_for("agent busy", Duration::from_secs(10), |s| {
            TestServer::agent_state(s, "1001") == "Busy(1)"
        })
        .await;
    assert_eq!(s.status.calls, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    // caller → acd → agent (echo) → acd → caller
    assert!(s.media.relayed_to_agent > 20, "{:?}", s.media);
    assert!(s.media.relayed_to_caller > 20, "{:?}", s.media);
    assert!(
        s.media.prompt_frames > 0,
        "caller heard the welcome prompt first"
    );
    assert_eq!(TestServer::agent_state(&s, "1001"), "Idle");
    assert_eq!(
        (
            s.status.totals.arrived,
            s.status.totals.connected,
            s.status.totals.ended
        ),
        (1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_hangs_up_and_the_caller_gets_bye() {
    let srv = start(None, |_| {}).await;
    let agent = agent(&srv, "1002", "agent_hangup.xml", 1, true).await;
    let call = caller(&srv, "caller_wait_bye.xml", "200", 0, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_hangs_up_while_waiting_in_queue() {
    let srv = start(None, |_| {}).await;
    // Nobody registered: the caller is answered, hears hold music, and gives up.
    let call = caller(&srv, "caller.xml", "100", 1500, 1);
    srv.wait_for("caller waiting", Duration::from_secs(5), |s| {
        s.queues.iter().any(|q| q.waiting == 1)
    })
    .await;
    call.success(Duration::from_secs(20)).await;
    let s = srv.wait_idle().await;
    assert!(
        s.media.prompt_frames > 20,
        "hold music played: {:?}",
        s.media
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_cancels_while_waiting_on_early_media() {
    let srv = start(Some(QUICK_PLAN), |_| {}).await;
    let call = caller(&srv, "caller_cancel.xml", "200", 1000, 1);
    call.success(Duration::from_secs(20)).await;
    srv.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_agent_is_cancelled_and_the_next_agent_gets_the_call() {
    let srv = start(Some(QUICK_PLAN), |_| {}).await;
    // 1001 has been idle longest, so it rings first and never answers.
    let lazy = agent(&srv, "1001", "agent_noanswer.xml", 1, false).await;
    let good = agent(&srv, "1003", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 4000, 1);
    lazy.success(Duration::from_secs(15)).await;
    call.success(Duration::from_secs(20)).await;
    good.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(
        TestServer::agent_state(&s, "1001"),
        "Resting",
        "missed agent rests for retry_s"
    );
    assert!(s.media.relayed_to_caller > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_agent_is_skipped() {
    let srv = start(Some(QUICK_PLAN), |_| {}).await;
    let busy = agent(&srv, "1001", "agent_busy.xml", 1, false).await;
    let good = agent(&srv, "1003", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 2000, 1);
    busy.success(Duration::from_secs(10)).await;
    call.success(Duration::from_secs(20)).await;
    good.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_is_refused_with_404() {
    let srv = start(None, |_| {}).await;
    let mut events = srv.running.core.events.subscribe();
    // The caller scenario expects 200, so it must fail on the 404 — and acd must keep nothing.
    let call = caller(&srv, "caller.xml", "999", 0, 1);
    let st = tokio::time::timeout(Duration::from_secs(20), async {
        let mut c = call;
        c.child.wait().await
    })
    .await
    .expect("sipp exits")
    .expect("sipp ran");
    assert!(!st.success());
    srv.wait_idle().await;
    let refused = std::iter::from_fn(|| events.try_recv().ok()).find_map(|e| match e {
        acd::events::Event::CallRefused { dialed, code, .. } => Some((dialed, code)),
        _ => None,
    });
    assert_eq!(refused, Some(("999".to_string(), 404)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc4733_digit_from_the_caller_is_detected_once() {
    let srv = start(None, |_| {}).await;
    let mut events = srv.running.core.events.subscribe();
    let call = caller(&srv, "caller_dtmf.xml", "100", 1500, 1);
    call.success(Duration::from_secs(20)).await;
    srv.wait_idle().await;
    let mut digits = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let acd::events::Event::Dtmf { digit, .. } = ev {
            digits.push(digit);
        }
    }
    assert_eq!(
        digits,
        vec!['1'],
        "one key press, one digit (the end packet is sent 3 times)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_call_with_postgresql_as_the_store() {
    let url = common::pg::url().await;
    let name = format!("acd_call_{:x}", rand::random::<u32>());
    acd::context::Store::create_database(&url, &name)
        .await
        .expect("PostgreSQL reachable");
    let db = format!(
        "{}/{name}",
        url.rsplit_once('/').expect("URL names a database").0
    );
    let srv = start(None, |c| c.database.url = db).await;
    let agent = agent(&srv, "1003", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "200", 1500, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert!(s.media.relayed_to_caller > 0);
    srv.running.store.close().await;
    acd::context::Store::drop_database(&url, &name)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_call_without_rtp_is_hung_up_by_acd() {
    let srv = start(None, |c| c.media.rtp_timeout_s = 1).await;
    let call = caller(&srv, "caller_silent.xml", "100", 0, 1);
    call.success(Duration::from_secs(20)).await;
    let s = srv.wait_idle().await;
    assert_eq!(s.status.totals.abandoned, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_over_tcp_is_bridged_to_an_agent_over_udp() {
    let srv = start(None, |_| {}).await;
    let agent = agent(&srv, "1003", "agent_hangup.xml", 1, true).await;
    let call = sipp(
        srv.sip(),
        srv.dir.path(),
        "caller_wait_bye.xml",
        &[
            "-t",
            "t1",
            "-s",
            "100",
            "-m",
            "1",
            "-key",
            "caller",
            "+15551234567",
        ],
    );
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(s.status.totals.connected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hangs_up_every_call_cleanly() {
    let srv = start(None, |_| {}).await;
    let agent = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller_wait_bye.xml", "100", 0, 1);
    srv.wait_for("bridged", Duration::from_secs(10), |s| {
        s.status.totals.connected == 1
    })
    .await;
    srv.running.core.shutdown().await;
    // Both phones got a BYE they could answer: their scenarios complete.
    call.success(Duration::from_secs(10)).await;
    agent.success(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialplan_reload_adds_a_number_without_restart() {
    let srv = start(None, |_| {}).await;
    let agent = agent(&srv, "1002", "agent_answer.xml", 1, true).await;
    let plan = format!("{QUICK_PLAN}\n[[number]]\ndial = \"300\"\nqueue = \"support\"\n");
    let d = acd::routing::Dialplan::parse(&plan, "reload.toml").unwrap();
    assert!(srv.running.core.set_dialplan(d).await);
    let call = caller(&srv, "caller_early.xml", "300", 1000, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(s.status.totals.connected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_requiring_100rel_and_timer_gets_a_reliable_183_and_a_session_timer() {
    let srv = start(Some(QUICK_PLAN), |_| {}).await;
    let agent = agent(&srv, "1002", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller_100rel_timer.xml", "200", 1500, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(s.status.totals.connected, 1);
    assert!(s.media.relayed_to_agent > 0, "{:?}", s.media);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_call_over_ipv6_loopback() {
    let srv = start(None, |c| c.sip.listen = "[::1]:0".parse().unwrap()).await;
    assert!(srv.sip().is_ipv6());
    let agent = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 2000, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(s.status.totals.connected, 1);
    assert!(
        s.media.relayed_to_agent > 0 && s.media.relayed_to_caller > 0,
        "{:?}",
        s.media
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_restart() {
    let srv = start(None, |_| {}).await;
    let phone = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    // Wait until the registration writer has saved the binding, then restart on the same database.
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    eventually("the binding in the database", || async {
        let saved = srv.running.store.load_bindings(unix).await.unwrap();
        (!saved.is_empty()).then_some(())
    })
    .await;
    let srv = srv.restart().await;
    let s = srv
        .wait_for(
            "1001 reachable without re-registering",
            Duration::from_secs(5),
            |s| TestServer::agent_state(s, "1001") == "Idle",
        )
        .await;
    assert_eq!(
        s.status.sip.registers_ok, 0,
        "no REGISTER reached the new process"
    );
    let call = caller(&srv, "caller.xml", "100", 1000, 1);
    call.success(Duration::from_secs(20)).await;
    phone.success(Duration::from_secs(10)).await;
    assert_eq!(srv.wait_idle().await.status.totals.connected, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_hold_gives_the_caller_hold_music_then_resumes() {
    let srv = start(None, |_| {}).await;
    let mut events = srv.running.core.events.subscribe();
    let agent = agent(&srv, "1001", "agent_hold.xml", 1, true).await;
    let call = caller(&srv, "caller_wait_bye.xml", "100", 0, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    let holds: Vec<bool> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| match e {
            acd::events::Event::Hold { on, .. } => Some(on),
            _ => None,
        })
        .collect();
    assert_eq!(holds, vec![true, false]);
    // About a second of hold music (50 frames of 20 ms) on top of the short welcome.
    assert!(s.media.prompt_frames >= 40, "{:?}", s.media);
    assert!(s.media.relayed_to_caller > 0, "bridge resumed after hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_context_is_looked_up_before_queueing() {
    let srv = start(None, |_| {}).await;
    let store = &srv.running.store;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    store
        .upsert_customer(
            "c7",
            "Grace Hopper",
            None,
            &["+15551234567".into()],
            &["vip".into()],
        )
        .await
        .unwrap();
    store
        .upsert_campaign(&acd::context::Campaign {
            name: "spring-ac-offer".into(),
            offer: "AC service -20%".into(),
            queue: Some("sales".into()),
            skills: String::new(),
            window_minutes: 60,
        })
        .await
        .unwrap();
    store
        .add_campaign_send("spring-ac-offer", "+15551234567", now - 300)
        .await
        .unwrap();
    let mut events = srv.running.core.events.subscribe();
    let agent = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 1000, 1);
    call.success(Duration::from_secs(20)).await;
    agent.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let found = std::iter::from_fn(|| events.try_recv().ok()).find_map(|e| match e {
        acd::events::Event::ContextLookup {
            customer,
            campaigns,
            tags,
            error,
            ms,
            ..
        } => Some((customer, campaigns, tags, error, ms)),
        _ => None,
    });
    let (customer, campaigns, tags, error, ms) = found.expect("a ContextLookup event");
    assert_eq!(customer.as_deref(), Some("c7"));
    assert_eq!(campaigns, vec!["spring-ac-offer"]);
    assert_eq!(tags, vec!["vip"]);
    assert_eq!(error, None);
    assert!(ms <= 150, "inside the budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_sends_a_campaign_caller_to_another_queue() {
    let plan = r#"
[[queue]]
name = "sales"
skill = "sales"
[[queue]]
name = "support"
skill = "support"
[[number]]
dial = "100"
queue = "sales"
[[rule]]
name = "vip-to-support"
when = { tag = "vip" }
then = { queue = "support", priority = 5, reason = "vip caller" }
"#;
    let srv = start(Some(plan), |_| {}).await;
    srv.running
        .store
        .upsert_customer("c9", "Ada", None, &["+15551234567".into()], &["vip".into()])
        .await
        .unwrap();
    let mut events = srv.running.core.events.subscribe();
    let sales = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let support = agent(&srv, "1002", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 1000, 1);
    call.success(Duration::from_secs(20)).await;
    support.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(
        TestServer::agent_state(&s, "1001"),
        "Idle",
        "the sales agent never rang"
    );
    drop(sales);
    let routed = std::iter::from_fn(|| events.try_recv().ok()).find_map(|e| match e {
        acd::events::Event::Routed {
            queue,
            rule,
            reason,
            ..
        } => Some((queue, rule, reason)),
        _ => None,
    });
    assert_eq!(
        routed,
        Some((
            "support".into(),
            Some("vip-to-support".into()),
            "vip caller".into()
        ))
    );
}

const MENU_PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
[[queue]]
name = "support"
skill = "support"
[[number]]
dial = "100"
queue = "sales"
menu = "main"
[[menu]]
name = "main"
timeout_s = 10
default = "support"
options = { "1" = "sales", "2" = "support" }
[[rule]]
name = "vip"
when = { tag = "vip" }
then = { queue = "support", reason = "vip caller" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplaced_caller_chooses_in_the_menu_and_a_vip_skips_it() {
    let srv = start(Some(MENU_PLAN), |_| {}).await;
    let mut events = srv.running.core.events.subscribe();
    let sales = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    // The caller presses 1 (RFC 4733) while the menu plays.
    let call = caller(&srv, "caller_dtmf.xml", "100", 2500, 1);
    call.success(Duration::from_secs(20)).await;
    sales.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let seen: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| match e {
            acd::events::Event::Menu { menu, .. } => Some(format!("menu {menu}")),
            acd::events::Event::MenuChoice { digit, queue, .. } => {
                Some(format!("choice {digit:?} {queue:?}"))
            }
            acd::events::Event::Connected { agent, .. } => Some(format!("connected {agent}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            "menu main",
            "choice Some('1') Some(\"sales\")",
            "connected 1001"
        ]
    );

    // Now the same number is tagged vip: straight to support, no menu, no digit needed.
    srv.running
        .store
        .upsert_customer("c1", "Ada", None, &["+15551234567".into()], &["vip".into()])
        .await
        .unwrap();
    let support = agent(&srv, "1002", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 1000, 1);
    call.success(Duration::from_secs(20)).await;
    support.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let seen: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|e| match e {
            acd::events::Event::Menu { menu, .. } => Some(format!("menu {menu}")),
            acd::events::Event::Routed { queue, rule, .. } => {
                Some(format!("routed {queue} {rule:?}"))
            }
            acd::events::Event::Connected { agent, .. } => Some(format!("connected {agent}")),
            _ => None,
        })
        .collect();
    assert_eq!(seen, vec!["routed support Some(\"vip\")", "connected 1002"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tells_its_story() {
    // The built-in demo plan and the context `serve --demo` seeds.
    let srv = start(Some(acd::serve::DEFAULT_DIALPLAN), |_| {}).await;
    let mut events = srv.running.core.events.subscribe();
    let routed_of =
        |events: &mut tokio::sync::broadcast::Receiver<acd::events::Event>| -> Vec<String> {
            std::iter::from_fn(|| events.try_recv().ok())
                .filter_map(|e| match e {
                    acd::events::Event::Menu { menu, .. } => Some(format!("menu {menu}")),
                    acd::events::Event::Routed { queue, rule, .. } => {
                        Some(format!("{queue} {}", rule.unwrap_or_default()))
                    }
                    acd::events::Event::Connected { agent, .. } => Some(format!("agent {agent}")),
                    _ => None,
                })
                .collect()
        };
    // All three phones stay registered throughout; longest-idle picks among those with the skill.
    let anna = agent(&srv, "1001", "agent_answer.xml", 2, true).await;
    let ben = agent(&srv, "1002", "agent_answer.xml", 1, true).await;
    let chloe = agent(&srv, "1003", "agent_answer.xml", 1, true).await;
    routed_of(&mut events);
    // SMS campaign 5 minutes ago → service sales (only Anna has the service skill), no menu.
    caller_from(&srv, "caller.xml", "+15551230001", "100", 800, 1)
        .success(Duration::from_secs(20))
        .await;
    srv.wait_idle().await;
    assert_eq!(
        routed_of(&mut events),
        vec!["service-sales spring-campaign", "agent 1001"]
    );
    // Complaint tag → management (Chloe).
    caller_from(&srv, "caller.xml", "+15551230003", "100", 800, 1)
        .success(Duration::from_secs(20))
        .await;
    srv.wait_idle().await;
    assert_eq!(
        routed_of(&mut events),
        vec!["management complaint", "agent 1003"]
    );
    // Open ticket → support: Ben, idle longer than Chloe.
    caller_from(&srv, "caller.xml", "+15551230002", "100", 800, 1)
        .success(Duration::from_secs(20))
        .await;
    srv.wait_idle().await;
    assert_eq!(
        routed_of(&mut events),
        vec!["support open-ticket", "agent 1002"]
    );
    // Anyone else hears the menu and presses 1 → sales: Anna, idle longer than Chloe.
    caller_from(&srv, "caller_dtmf.xml", "+15559990000", "100", 2500, 1)
        .success(Duration::from_secs(20))
        .await;
    srv.wait_idle().await;
    for phone in [anna, ben, chloe] {
        phone.success(Duration::from_secs(10)).await;
    }
    assert_eq!(
        routed_of(&mut events),
        vec!["sales ", "menu main", "agent 1001"]
    );
}

const VIP_PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
[[queue]]
name = "support"
skill = "support"
[[number]]
dial = "100"
queue = "sales"
[[rule]]
name = "vip"
when = { tag = "vip" }
then = { queue = "support" }
"#;

fn lookup_and_route(
    events: &mut tokio::sync::broadcast::Receiver<acd::events::Event>,
) -> (Option<String>, Option<String>) {
    let mut error = None;
    let mut queue = None;
    while let Ok(e) = events.try_recv() {
        match e {
            acd::events::Event::ContextLookup { error: e, .. } => error = e,
            acd::events::Event::Routed { queue: q, .. } => queue = Some(q),
            _ => {}
        }
    }
    (error, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_database_does_not_hold_the_caller() {
    // The rollback journal: a writer's exclusive lock holds readers too (WAL would let them by).
    let srv = start(Some(VIP_PLAN), |c| {
        c.database.url.push_str("?journal_mode=delete")
    })
    .await;
    srv.running
        .store
        .upsert_customer("c1", "Ada", None, &["+15551234567".into()], &["vip".into()])
        .await
        .unwrap();
    let sales = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    // Another process holds the database's exclusive lock for the whole call.
    let other = acd::context::Store::open(&srv.cfg.database.url)
        .await
        .unwrap();
    let lock = other.lock_exclusive().await.unwrap();
    let mut events = srv.running.core.events.subscribe();
    caller(&srv, "caller.xml", "100", 800, 1)
        .success(Duration::from_secs(20))
        .await;
    sales.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let (error, queue) = lookup_and_route(&mut events);
    // Either the source gave up at 90 % of the budget or the call's deadline fired at 100 %.
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("within 135 ms") || e.contains("after 150 ms")),
        "{error:?}"
    );
    assert_eq!(
        queue.as_deref(),
        Some("sales"),
        "no context: the number's queue, not the vip rule"
    );
    lock.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_postgresql_does_not_hold_the_caller() {
    let url = common::pg::url().await;
    let name = format!("acd_outage_{:x}", rand::random::<u32>());
    acd::context::Store::create_database(&url, &name)
        .await
        .expect("PostgreSQL reachable");
    let db = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    let srv = start(Some(VIP_PLAN), |c| c.database.url = db).await;
    let sales = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    // The database goes away under the running server (connections cut, then dropped).
    acd::context::Store::drop_database(&url, &name)
        .await
        .unwrap();
    let mut events = srv.running.core.events.subscribe();
    caller(&srv, "caller.xml", "100", 800, 1)
        .success(Duration::from_secs(20))
        .await;
    sales.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let (error, queue) = lookup_and_route(&mut events);
    assert!(error.is_some(), "the lookup failed and says so");
    assert_eq!(queue.as_deref(), Some("sales"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regular_caller_reaches_the_agent_they_usually_talk_to() {
    let plan = format!("{SIMPLE_PLAN}\n[[rule]]\nname = \"regular\"\nwhen = {{ last_agent_within_days = 30 }}\nthen = {{ preferred_agent = \"last\", fallback_s = 20 }}\n");
    let srv = start(Some(&plan), |_| {}).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    srv.running
        .store
        .record_interaction(&acd::context::InteractionRecord {
            id: "old-1".into(),
            phone: "+15551234567".into(),
            customer_id: None,
            started_at: now - 86_400,
            queue: Some("sales".into()),
            agent_id: Some("1003".into()),
            outcome: Some("answered".into()),
            tags: vec![],
        })
        .await
        .unwrap();
    // 1001 registers first, so it has been idle longest: without the rule it would get the call.
    let anna = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let chloe = agent(&srv, "1003", "agent_answer.xml", 1, true).await;
    caller(&srv, "caller.xml", "100", 800, 1)
        .success(Duration::from_secs(20))
        .await;
    chloe.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(
        TestServer::agent_state(&s, "1001"),
        "Idle",
        "Anna never rang"
    );
    drop(anna);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_campaign_hears_the_menu_and_so_does_everyone_when_the_database_is_locked() {
    // The rollback journal: a writer's exclusive lock holds readers too (WAL would let them by).
    let srv = start(Some(acd::serve::DEFAULT_DIALPLAN), |c| {
        c.database.url.push_str("?journal_mode=delete")
    })
    .await;
    // Sent 2 hours ago: outside the campaign's 60-minute window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    srv.running
        .store
        .add_campaign_send("spring-ac-offer", "+15551230009", now - 7200)
        .await
        .unwrap();
    let mut events = srv.running.core.events.subscribe();
    let anna = agent(&srv, "1001", "agent_answer.xml", 2, true).await;
    let menus = |events: &mut tokio::sync::broadcast::Receiver<acd::events::Event>| -> Vec<String> {
        std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|e| match e {
                acd::events::Event::Menu { menu, .. } => Some(format!("menu {menu}")),
                acd::events::Event::MenuChoice { queue, .. } => Some(format!("chose {queue:?}")),
                acd::events::Event::Connected { agent, .. } => Some(format!("agent {agent}")),
                _ => None,
            })
            .collect()
    };
    caller_from(&srv, "caller_dtmf.xml", "+15551230009", "100", 2500, 1)
        .success(Duration::from_secs(20))
        .await;
    srv.wait_idle().await;
    assert_eq!(
        menus(&mut events),
        vec!["menu main", "chose Some(\"sales\")", "agent 1001"]
    );
    // The campaign caller from the demo would skip the menu — but not while the database is locked.
    let other = acd::context::Store::open(&srv.cfg.database.url)
        .await
        .unwrap();
    let lock = other.lock_exclusive().await.unwrap();
    caller_from(&srv, "caller_dtmf.xml", "+15551230001", "100", 2500, 1)
        .success(Duration::from_secs(20))
        .await;
    srv.wait_idle().await;
    assert_eq!(
        menus(&mut events),
        vec!["menu main", "chose Some(\"sales\")", "agent 1001"]
    );
    lock.release().await.unwrap();
    anna.success(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_crm_is_asked_in_parallel_and_a_slow_one_is_left_behind() {
    use axum::{extract::Path, routing::get, Json, Router};
    let app = Router::new()
        .route(
            "/c/:number",
            get(|Path(n): Path<String>| async move {
                Json(serde_json::json!({ "id": format!("crm-{n}"), "name": "Ada (CRM)", "labels": ["VIP"] }))
            }),
        )
        .route(
            "/slow/:number",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Json(serde_json::json!({ "labels": ["complaint"] }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let source = |name: &str, path: &str| acd::context::http_source::HttpSource {
        name: name.into(),
        url: format!("http://127.0.0.1:{port}/{path}/{{number}}"),
        customer_id: Some("/id".into()),
        customer_name: Some("/name".into()),
        customer_email: None,
        tags: Some("/labels".into()),
        tickets: None,
        last_agent: None,
        ca_file: None,
    };
    let srv = start(Some(VIP_PLAN), |c| {
        c.context.http = vec![source("crm", "c"), source("slow", "slow")]
    })
    .await;
    let mut events = srv.running.core.events.subscribe();
    let support = agent(&srv, "1002", "agent_answer.xml", 1, true).await;
    caller(&srv, "caller.xml", "100", 800, 1)
        .success(Duration::from_secs(20))
        .await;
    support.success(Duration::from_secs(10)).await;
    srv.wait_idle().await;
    let mut lookup = None;
    let mut routed = None;
    while let Ok(e) = events.try_recv() {
        match e {
            acd::events::Event::ContextLookup {
                customer,
                tags,
                sources,
                ms,
                ..
            } => lookup = Some((customer, tags, sources, ms)),
            acd::events::Event::Routed { queue, .. } => routed = Some(queue),
            _ => {}
        }
    }
    let (customer, tags, sources, ms) = lookup.expect("a lookup event");
    assert_eq!(
        customer.as_deref(),
        Some("crm-+15551234567"),
        "the number reached the CRM decoded"
    );
    assert_eq!(
        tags,
        vec!["vip"],
        "the slow source's 'complaint' never arrived"
    );
    assert_eq!(
        routed.as_deref(),
        Some("support"),
        "routed on the CRM's tag"
    );
    assert!(
        ms < 1000,
        "the call did not wait for the slow source: {ms} ms"
    );
    let by_name: std::collections::HashMap<String, Option<String>> =
        sources.into_iter().map(|s| (s.source, s.error)).collect();
    assert_eq!(by_name.get("database"), Some(&None));
    assert_eq!(by_name.get("crm"), Some(&None));
    assert!(
        by_name
            .get("slow")
            .and_then(|e| e.clone())
            .is_some_and(|e| e.contains("no answer within")),
        "{by_name:?}"
    );
}
