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
    // b's status (its wallboard, its desks) shows the centre's agents and queues, which the
    // leader a dispatches.
    let s = b
        .wait_for("b shows the leader's agents", Duration::from_secs(5), |s| {
            TestServer::agent_state(s, "1001") == "Idle"
        })
        .await;
    assert!(s.queues.iter().any(|q| q.name == "sales"), "{:?}", s.queues);
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

/// An acd process of the cluster (so it can be killed with SIGKILL).
struct Proc {
    child: tokio::process::Child,
    sip: std::net::SocketAddr,
}

/// Starts `acd serve --demo` as node `name` of `cluster`, with its own SQLite database.
async fn process_node(dir: &std::path::Path, url: &str, cluster: &str, name: &str) -> Proc {
    use tokio::io::AsyncBufReadExt;
    let sip: std::net::SocketAddr = format!("127.0.0.1:{}", ports(2)).parse().unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", ports(2)).parse().unwrap();
    let rtp = ports(100);
    let plan = dir.join("dialplan.toml");
    std::fs::write(&plan, SIMPLE_PLAN).unwrap();
    let config = dir.join(format!("acd-{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"dialplan = "{plan}"
[sip]
listen = "{sip}"
qualify_s = 0
trusted = ["127.0.0.1"]
[http]
listen = "{http}"
ready_on_register = true
[database]
url = "sqlite://{db}"
spool_dir = "{spool}"
[media]
rtp_ports = "{rtp}-{rtp_high}"
recordings_dir = "{rec}"
[cluster]
node = "{name}"
name = "{cluster}"
nats = "{url}"
"#,
            plan = plan.display(),
            db = dir.join(format!("{name}.db")).display(),
            spool = dir.join(format!("spool-{name}")).display(),
            rec = dir.join("rec").display(),
            rtp_high = rtp + 99,
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("acd-{name}.log"))).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_acd"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--demo", "--demo-password", PASSWORD])
        .env("ACD_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("acd runs");
    let out = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(out).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.starts_with("acd is running") {
                return;
            }
        }
        panic!(
            "acd {name} exited before it was running; see {}",
            dir.display()
        );
    })
    .await
    .expect("acd starts within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Proc { child, sip }
}

/// The calls in the cluster's calls bucket: (owner, phase name).
async fn calls_in_bucket(url: &str, cluster: &str) -> Vec<(String, String)> {
    use futures_util::StreamExt;
    let client = async_nats::connect(url).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let Ok(kv) = js.get_key_value(format!("{cluster}_calls")).await else {
        return Vec::new();
    };
    let Ok(keys) = kv.keys().await else {
        return Vec::new();
    };
    let keys: Vec<String> = keys.filter_map(|k| async move { k.ok() }).collect().await;
    let mut out = Vec::new();
    for k in keys {
        if let Ok(Some(v)) = kv.get(&k).await {
            let j: serde_json::Value = serde_json::from_slice(&v).unwrap_or_default();
            out.push((
                j["owner"].as_str().unwrap_or("").to_string(),
                j["call"]["phase"]["phase"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
    }
    out
}

/// Two real phones talk through node `a`; `a` is killed with SIGKILL. The leader `b` sees it
/// die, takes the call over (re-INVITEs to both phones from `b`), audio flows through `b`, and
/// the caller's later BYE reaches `b` and ends the call there with 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_survives_the_kill_of_its_node() {
    let url = nats::url().await;
    let cluster = nats::cluster_name();
    let b = node(&url, &cluster, "b").await;
    assert_eq!(leader(&[&b]).await, 0);
    let dir = b.dir.path().to_path_buf();
    let a = process_node(&dir, &url, &cluster, "a").await;
    let _agent = baresip::spawn_at(&dir, b.sip(), "1002", &baresip::Phone::default(), true, &[]);
    b.wait_for(
        "baresip 1002 idle at the leader",
        Duration::from_secs(15),
        |s| TestServer::agent_state(s, "1002") == "Idle",
    )
    .await;
    let dial = format!("/dial sip:200@{}", a.sip);
    let mut caller = baresip::spawn_at(
        &dir,
        a.sip,
        "caller",
        &baresip::Phone::default(),
        false,
        &["-e", &dial, "-t", "25"],
    );
    b.wait_for("the agent busy on a's call", Duration::from_secs(15), |s| {
        TestServer::agent_state(s, "1002").starts_with("Busy")
    })
    .await;
    eventually("a's call snapshot, connected, in the bucket", || {
        let (url, cluster) = (url.clone(), cluster.clone());
        async move {
            let calls = calls_in_bucket(&url, &cluster).await;
            calls
                .iter()
                .any(|(o, p)| o == "a" && p == "connected")
                .then_some(())
        }
    })
    .await;
    let mut a = a;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let killed = std::time::Instant::now();

    let s = b
        .wait_for("audio both ways through b", Duration::from_secs(10), |s| {
            s.media.relayed_to_agent > 20 && s.media.relayed_to_caller > 20
        })
        .await;
    assert_eq!(s.status.calls, 1, "b holds the call");
    assert!(TestServer::agent_state(&s, "1002").starts_with("Busy"));
    let gap = killed.elapsed();
    assert_eq!(
        calls_in_bucket(&url, &cluster)
            .await
            .first()
            .map(|c| c.0.clone()),
        Some("b".to_string()),
        "the snapshot is b's now"
    );
    // The caller's BYE (25 s after dialling) goes to b, where the call ends.
    let s = b
        .wait_for(
            "the caller's BYE ends the call on b",
            Duration::from_secs(40),
            |s| s.status.totals.ended == 1,
        )
        .await;
    assert_eq!(s.status.calls, 0);
    let _ = caller.wait().await;
    let log = std::fs::read_to_string(dir.join("baresip-caller.log")).unwrap_or_default();
    assert!(!log.contains(" 481 "), "the BYE was answered 481:\n{log}");
    eventually("the ended call's snapshot deleted", || {
        let (url, cluster) = (url.clone(), cluster.clone());
        async move {
            calls_in_bucket(&url, &cluster)
                .await
                .is_empty()
                .then_some(())
        }
    })
    .await;
    eprintln!("audio back through b {gap:?} after the kill");
    nats::remove_cluster(&url, &cluster).await;
}

/// The agent's phone is registered with node `a` (the leader, which holds the call), the
/// agent's desk is open on node `b`: "ready" at b's desk reaches the leader, the pop reaches
/// b's desk before a rings the phone, and the call's changes follow on b's desk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pop_reaches_a_desk_open_on_another_node_before_the_phone_rings() {
    use common::desk::{invites_received, DeskWs};
    use serde_json::json;
    let url = nats::url().await;
    let cluster = nats::cluster_name();
    let desk_node = |name: &str| {
        let c = nats::cluster_config(&url, &cluster, name);
        start(None, move |cfg| {
            cfg.cluster = Some(c);
            cfg.http.ready_on_register = false;
        })
    };
    let a = desk_node("a").await;
    assert_eq!(leader(&[&a]).await, 0);
    let b = desk_node("b").await;
    let _phone =
        common::desk::phone(&a, "1001", "agent_answer.xml", &["-m", "1", "-trace_msg"]).await;
    let http = b.running.http_addr;
    let tok = http::login(http, "1001", PASSWORD).await;
    let mut desk = DeskWs::open(http, &tok).await;
    let r = http::post(
        http,
        "/api/me/state",
        Some(&tok),
        &json!({"state": "ready"}),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "ready at b's desk is applied by the leader a: {}",
        r.body
    );
    desk.next("state", Duration::from_secs(5)).await;
    a.wait_for(
        "the leader sees the agent ready",
        Duration::from_secs(5),
        |s| TestServer::agent_state(s, "1001") == "Idle",
    )
    .await;
    let c = caller(&a, "caller.xml", "100", 1500, 1);
    let (pop, pop_at) = desk.next("offer", Duration::from_secs(10)).await;
    assert_eq!(pop["caller"], "+15551234567", "{pop:#}");
    desk.next("connected", Duration::from_secs(10)).await;
    let invites = invites_received(a.dir.path(), "agent_answer.xml");
    assert_eq!(invites.len(), 1, "SIPp logged the INVITE");
    assert!(
        pop_at <= invites[0],
        "pop on b's desk at {pop_at} ms, INVITE at the phone at {} ms",
        invites[0]
    );
    desk.next("ended", Duration::from_secs(10)).await;
    c.success(Duration::from_secs(20)).await;
    nats::remove_cluster(&url, &cluster).await;
}
