//! Several acd nodes as one centre over a real NATS (issue 14): one leader for the partition,
//! an agent registered on one node reached from another, a caller on one node offered by the
//! leader and bridged where the caller is.

mod common;

use common::*;
use std::time::Duration;

/// A node of `cluster` named `name`, with the demo agents and the simple plan.
async fn node(url: &str, cluster: &str, name: &str) -> TestServer {
    let c = nats::cluster_config(url, cluster, name);
    start(None, move |cfg| cfg.cluster = Some(c)).await
}

/// Waits until exactly one of `nodes` leads the default partition; returns its index.
async fn leader(nodes: &[&TestServer]) -> usize {
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut leading = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if !n.status().await.status.leading.is_empty() {
                leading.push(i);
            }
        }
        if leading.len() == 1 {
            return leading[0];
        }
        assert!(
            tokio::time::Instant::now() < end,
            "no single leader: {leading:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leader is `a`; the agent's phone registers with `b` only and the caller calls `b`: `a`
/// learns of the phone through the bindings bucket, dispatches `b`'s caller, and `b` rings
/// the agent and bridges the call itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_on_one_node_is_dispatched_by_the_leader_on_the_other() {
    let url = nats::url().await;
    let cluster = nats::cluster_name();
    let a = node(&url, &cluster, "a").await;
    assert_eq!(leader(&[&a]).await, 0);
    let b = node(&url, &cluster, "b").await;
    assert_eq!(leader(&[&a, &b]).await, 0, "a keeps the lease");
    let phone = phone_at(
        b.sip(),
        b.dir.path(),
        "1001",
        "agent_answer.xml",
        &["-m", "1", "-rtp_echo"],
    )
    .await;
    a.wait_for("agent idle at the leader", Duration::from_secs(10), |s| {
        TestServer::agent_state(s, "1001") == "Idle"
    })
    .await;
    let call = caller(&b, "caller.xml", "100", 3000, 1);
    a.wait_for(
        "the leader sees the agent busy",
        Duration::from_secs(10),
        |s| TestServer::agent_state(s, "1001").starts_with("Busy"),
    )
    .await;
    call.success(Duration::from_secs(20)).await;
    phone.success(Duration::from_secs(10)).await;
    let s = b.wait_idle().await;
    assert_eq!(s.status.totals.connected, 1);
    assert!(s.media.relayed_to_agent > 20, "{:?}", s.media);
    assert!(s.media.relayed_to_caller > 20, "{:?}", s.media);
    assert_eq!(a.status().await.status.totals.arrived, 0, "a held no call");
    a.wait_for("agent idle again", Duration::from_secs(10), |s| {
        TestServer::agent_state(s, "1001") == "Idle"
    })
    .await;
    nats::remove_cluster(&url, &cluster).await;
}
