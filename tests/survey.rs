//! The post-call survey end to end: the agent hangs up first, the caller presses 1, the rating
//! is stored, the caller is tagged `complaint`, and their next call goes to management.

mod common;

use common::{agent, caller_from, sipp, TestServer};
use std::time::Duration;

const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
[[queue]]
name = "management"
skill = "management"
[[number]]
dial = "100"
queue = "sales"
[survey]
enabled = true
queues = ["sales"]
complaint_at_or_below = 2
timeout_s = 5
[[rule]]
name = "complaint"
when = { tag = "complaint" }
then = { queue = "management", priority = 20, reason = "customer tagged '{tag}'" }
"#;

const NUMBER: &str = "+15559990001";

async fn row_for(srv: &TestServer, queue: &str) -> acd::context::InteractionRow {
    // The newest interaction of this caller in `queue`, once written.
    for _ in 0..100 {
        let list = srv
            .running
            .store
            .lookup(NUMBER, acd::context::time::unix_now() + 1)
            .await
            .unwrap();
        if list
            .history
            .iter()
            .any(|h| h.queue.as_deref() == Some(queue))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids = srv.running.store.interactions_of(NUMBER).await.unwrap();
    for id in ids {
        let r = srv.running.store.interaction(&id).await.unwrap().unwrap();
        if r.queue.as_deref() == Some(queue) {
            return r;
        }
    }
    panic!("no {queue} call from {NUMBER} in the history");
}

#[tokio::test]
async fn a_low_rating_sends_the_next_call_to_management() {
    let srv = common::start(Some(PLAN), |_| {}).await;
    // Anna (sales) hangs up 1.5 s into the call; Chloe (management) answers the next one.
    let anna = agent(&srv, "1001", "agent_hangup.xml", 1, false).await;
    let chloe = agent(&srv, "1003", "agent_answer.xml", 1, false).await;
    // Chloe also has sales: keep her out of the first call.
    let tok = common::http::login(srv.running.http_addr, "1003", common::PASSWORD).await;
    common::http::post(
        srv.running.http_addr,
        "/api/me/state",
        Some(&tok),
        &serde_json::json!({"state": "pause", "reason": "break"}),
    )
    .await;
    let rater = sipp(
        srv.sip(),
        srv.dir.path(),
        "caller_survey.xml",
        &[
            "-s", "100", "-key", "caller", NUMBER, "-key", "rating", "1", "-d", "4000", "-m", "1",
        ],
    );
    rater.success(Duration::from_secs(30)).await;
    anna.success(Duration::from_secs(10)).await;
    let first = row_for(&srv, "sales").await;
    assert_eq!(first.outcome.as_deref(), Some("answered"));
    let mut rated = first.clone();
    for _ in 0..100 {
        rated = srv
            .running
            .store
            .interaction(&first.id)
            .await
            .unwrap()
            .unwrap();
        if rated.rating.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rated.rating, Some(1));
    let ctx = srv
        .running
        .store
        .lookup(NUMBER, acd::context::time::unix_now())
        .await
        .unwrap();
    assert!(ctx.tags.contains(&"complaint".to_string()), "{ctx:?}");

    // The next call skips sales: the complaint rule sends it to management (Chloe, now ready).
    common::http::post(
        srv.running.http_addr,
        "/api/me/state",
        Some(&tok),
        &serde_json::json!({"state": "ready"}),
    )
    .await;
    let again = caller_from(&srv, "caller.xml", NUMBER, "100", 1000, 1);
    again.success(Duration::from_secs(20)).await;
    chloe.success(Duration::from_secs(10)).await;
    let second = row_for(&srv, "management").await;
    assert_eq!(second.rule.as_deref(), Some("complaint"));
    assert_eq!(second.agent_id.as_deref(), Some("1003"));
    srv.wait_idle().await;
}
