//! Draining a node over the API while a SIPp call is in progress: new callers get 503 with
//! Retry-After (so a carrier or the edge tries another node), the call in progress talks to its
//! end, the drain then completes, and the node can be put back in service.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_refuses_new_calls_and_lets_the_call_in_progress_finish() {
    let srv = start(None, |_| {}).await;
    let http = srv.running.http_addr;
    let anna = agent(&srv, "1001", "agent_answer.xml", 1, true).await;
    let call = caller(&srv, "caller.xml", "100", 4000, 1);
    srv.wait_for("the call is connected", Duration::from_secs(10), |s| {
        s.status.totals.connected == 1
    })
    .await;

    // An agent may not drain the node; a supervisor may.
    let agent_token = http::login(http, "1002", PASSWORD).await;
    assert_eq!(
        http::post(
            http,
            "/api/drain",
            Some(&agent_token),
            &serde_json::json!({})
        )
        .await
        .status,
        403
    );
    let sup = http::login(http, "sup", PASSWORD).await;
    let r = http::post(http, "/api/drain", Some(&sup), &serde_json::json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["draining"], true);
    assert_eq!(r.json()["calls"], 1);

    let (line, retry) = one_invite(srv.sip()).await;
    assert!(line.starts_with("SIP/2.0 503"), "{line}");
    assert_eq!(retry, "5");

    // The call in progress goes on to its own end, and the drain is then complete.
    call.success(Duration::from_secs(20)).await;
    anna.success(Duration::from_secs(10)).await;
    tokio::time::timeout(Duration::from_secs(10), srv.running.core.drain())
        .await
        .expect("the drain completes once the call has ended");
    let s = srv.status().await;
    assert_eq!((s.status.totals.connected, s.status.calls), (1, 0));
    assert!(s.status.draining);

    // Back in service.
    let r = http::request(http, "DELETE", "/api/drain", Some(&sup), None).await;
    assert_eq!(r.json()["draining"], false, "{}", r.body);
    let (line, _) = one_invite(srv.sip()).await;
    assert!(line.starts_with("SIP/2.0 200"), "{line}");
}
