//! `acd serve --drain`: on SIGTERM the node takes no new calls (503) and lets every call it
//! has finish, whatever its phase (talking, waiting, ringing an agent, in the menu), then stops
//! by itself.

use super::*;

/// The simple plan (100 → sales, 200 → support), and 300: the menu, whose 1 is sales.
fn drain_plan() -> String {
    format!(
        r#"{SIMPLE_PLAN}
[[number]]
dial = "300"
queue = "sales"
menu = "main"
[[menu]]
name = "main"
timeout_s = 30
default = "sales"
options = {{ "1" = "sales" }}
"#
    )
}

/// Callers ringing one of the queues of the status.
fn ringing(s: &serde_json::Value, queue: &str) -> u64 {
    s["queues"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["name"] == queue))
        .and_then(|q| q["ringing"].as_u64())
        .unwrap_or(0)
}

/// A caller: `scen` dialling `number` from `from`, hanging up `hold_ms` after being answered.
fn caller(node: &Node, scen: &str, number: &str, from: &str, hold_ms: u32) -> Sipp {
    caller_at(node.sip, &node.dir, scen, from, number, hold_ms, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_drain_lets_calls_in_every_phase_finish() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let db = format!("sqlite://{}/acd.db", dir.display());
    let node = Node::with_plan(dir, db, "end", &drain_plan());
    let acd = node.start_with(true, 1, &["--drain"]).await;
    let token = http::login(acd.http, "sup", PASSWORD).await;
    // 1001 takes the three sales calls one after another; 1002's phone rings 3 s first.
    let sales = phone_at(
        node.sip,
        dir,
        "1001",
        "agent_answer.xml",
        &["-m", "3", "-rtp_echo"],
    )
    .await;
    let support = phone_at(
        node.sip,
        dir,
        "1002",
        "agent_rings_3s.xml",
        &["-m", "1", "-rtp_echo"],
    )
    .await;
    let both = Duration::from_secs(10);
    acd.wait(&token, "both agents idle", both, |s| {
        agent_state(s, "1001") == "idle" && agent_state(s, "1002") == "idle"
    })
    .await;

    // Talking: A reaches 1001 and talks for 5 s.
    let a = caller(&node, "caller.xml", "100", "+15550000301", 5_000);
    acd.wait(&token, "A talks to 1001", both, |s| {
        agent_state(s, "1001").starts_with("busy")
    })
    .await;
    // Waiting: B waits behind A.
    let b = caller(&node, "caller.xml", "100", "+15550000302", 12_000);
    acd.wait(&token, "B waits", both, |s| waiting(s) == 1).await;
    // In the menu: C takes 3 s to press 1 (sales), then waits behind B.
    let c = caller(
        &node,
        "caller_menu_slow_digit.xml",
        "300",
        "+15550000303",
        14_000,
    );
    node.saved("C is in the menu", |p| matches!(p, SavedPhase::Menu { .. }))
        .await;
    // Ringing: D's call rings 1002 for 3 s.
    let d = caller(&node, "caller.xml", "200", "+15550000304", 8_000);
    acd.wait(&token, "1002 rings", both, |s| ringing(s, "support") == 1)
        .await;

    acd.signal("TERM");
    acd.wait(&token, "draining", both, |s| {
        s["status"]["draining"] == true
    })
    .await;
    let (line, retry) = one_invite(node.sip).await;
    assert!(
        line.starts_with("SIP/2.0 503"),
        "a new call is refused: {line}"
    );
    assert!(!retry.is_empty(), "with Retry-After");
    // Every call goes on to its own end: each SIPp sees its whole scenario through.
    for (who, p) in [("A", a), ("B", b), ("C", c), ("D", d)] {
        eprintln!("waiting for caller {who}");
        p.success(Duration::from_secs(30)).await;
    }
    sales.success(Duration::from_secs(10)).await;
    support.success(Duration::from_secs(10)).await;
    let st = acd.exited(Duration::from_secs(10)).await;
    assert!(st.success(), "acd stops cleanly once drained: {st}");
}
