//! A real softphone as the agent: baresip registers with its password (digest), auto-answers,
//! and a SIPp caller is bridged to it with RTP both ways.

mod common;

use common::*;
use std::time::Duration;

fn spawn_baresip(srv: &TestServer, user: &str) -> tokio::process::Child {
    baresip::spawn(srv, user, &baresip::Phone::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_agent_registers_with_digest_answers_and_is_bridged() {
    let srv = start(None, |_| {}).await;
    let mut phone = spawn_baresip(&srv, "1002");
    srv.wait_for("baresip registered as 1002", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1002") == "Idle"
    })
    .await;
    let call = caller(&srv, "caller.xml", "200", 3000, 1);
    srv.wait_for("baresip answered", Duration::from_secs(10), |s| {
        TestServer::agent_state(s, "1002").starts_with("Busy")
    })
    .await;
    call.success(Duration::from_secs(20)).await;
    let s = srv.wait_idle().await;
    let _ = phone.kill().await;
    let log = std::fs::read_to_string(srv.dir.path().join("baresip-1002.log")).unwrap_or_default();
    assert!(
        s.media.relayed_to_agent > 20,
        "caller audio reached baresip: {:?}\n{log}",
        s.media
    );
    assert!(
        s.media.relayed_to_caller > 20,
        "baresip audio reached the caller: {:?}\n{log}",
        s.media
    );
    assert_eq!(s.status.sip.registers_ok, 1);
    assert_eq!(
        TestServer::agent_state(&s, "1002"),
        "Idle",
        "agent free after the call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualify_keeps_a_live_phone_and_drops_a_vanished_one() {
    let srv = start(None, |c| c.sip.qualify_s = 1).await;
    let mut phone = spawn_baresip(&srv, "1003");
    srv.wait_for("baresip registered", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1003") == "Idle"
    })
    .await;
    // Several pings answered: still in the queue.
    let mut events = srv.running.core.events.subscribe();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(TestServer::agent_state(&srv.status().await, "1003"), "Idle");
    assert!(
        events.try_recv().is_err(),
        "no reachability change while the phone answers"
    );
    // The softphone dies without un-registering: the next unanswered ping takes it out.
    phone.kill().await.unwrap();
    srv.wait_for("vanished phone taken out", Duration::from_secs(10), |s| {
        TestServer::agent_state(s, "1003") == "Offline"
    })
    .await;
    // Three unanswered pings in a row and its binding is dropped, not kept until its
    // Expires runs out.
    srv.wait_for("dead binding dropped", Duration::from_secs(10), |s| {
        s.status.registered_agents == 0
    })
    .await;
}
