//! ACD depth end to end with SIPp: an agent who lets a call ring out is skipped and paused, and
//! a caller who waits too long overflows to another queue.

mod common;

use common::{agent, caller, start, TestServer};
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
announce_every_s = 5
[[number]]
dial = "100"
queue = "sales"
"#;
    let srv = start(Some(plan), |_| {}).await;
    // Nobody is there to answer: the caller waits 4 s and hangs up.
    let mut events = srv.running.core.events.subscribe();
    caller(&srv, "caller.xml", "100", 4000, 1)
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
    // The announcement went out as RTP to the caller, beyond the chime and hold music.
    assert!(
        s.media.once_frames >= 50,
        "announcement frames sent: {}",
        s.media.once_frames
    );
}
