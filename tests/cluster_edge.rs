//! The cluster behind its Kamailio edge (`deploy/kamailio/edge.cfg`, as shipped): a real phone
//! registers through the edge (Path), a caller calls the edge, the dispatcher picks a node, the
//! leader offers the call, and the node's INVITE to the phone goes back through the edge.

mod common;

use common::*;
use std::time::Duration;

async fn node(url: &str, cluster: &str, name: &str) -> TestServer {
    let c = nats::cluster_config(url, cluster, name);
    start(None, move |cfg| cfg.cluster = Some(c)).await
}

/// A running Kamailio: its children go with it when this is dropped (they outlive a kill of
/// the main process otherwise).
struct Edge(tokio::process::Child);

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("pkill")
                .args(["-9", "-P", &pid.to_string()])
                .status();
        }
    }
}

/// Kamailio with the shipped edge configuration on loopback, the nodes as its dispatcher set.
fn edge(dir: &std::path::Path, port: u16, nodes: &[std::net::SocketAddr]) -> Edge {
    assert!(
        std::process::Command::new("kamailio")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success()),
        "kamailio is not installed: apt-get install -y kamailio (as .ci/run does)"
    );
    let list = dir.join("dispatcher.list");
    let lines: String = nodes.iter().map(|n| format!("1 sip:{n} 0 0\n")).collect();
    std::fs::write(&list, lines).unwrap();
    let run = dir.join("kamailio");
    std::fs::create_dir_all(&run).unwrap();
    let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
    let child = tokio::process::Command::new("kamailio")
        .args(["-DD", "-E", "-m", "64", "-M", "8", "-f"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/kamailio/edge.cfg"
        ))
        .arg("-Y")
        .arg(&run)
        .args(["-A", "EDGE_IP=\"127.0.0.1\""])
        .args(["-A", &format!("EDGE_PORT={port}")])
        .args(["-A", &format!("DISPATCHER_LIST=\"{}\"", list.display())])
        .args(["-A", &format!("CTL_SOCKET=\"unix:{}/ctl\"", run.display())])
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("kamailio runs");
    Edge(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_edge_reaches_a_phone_registered_through_it() {
    let url = nats::url().await;
    let cluster = nats::cluster_name();
    let a = node(&url, &cluster, "a").await;
    let b = node(&url, &cluster, "b").await;
    let port = ports(2);
    let edge_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = a.dir.path().to_path_buf();
    let _edge = edge(&dir, port, &[a.sip(), b.sip()]);
    // The phone registers with the edge, never with a node.
    let _phone = baresip::spawn_at(
        &dir,
        edge_addr,
        "1002",
        &baresip::Phone::default(),
        true,
        &[],
    );
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    let leader = loop {
        let (sa, sb) = (a.status().await, b.status().await);
        let l = if sa.status.leading.is_empty() {
            (&b, sb)
        } else {
            (&a, sa)
        };
        if TestServer::agent_state(&l.1, "1002") == "Idle" {
            break l.0;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the phone registered through the edge never became idle:\n{}\n{}",
            std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("baresip-1002.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let call = caller_at(
        edge_addr,
        &dir,
        "caller.xml",
        "+15551234567",
        "200",
        3000,
        1,
    );
    call.success(Duration::from_secs(20)).await;
    let _ = leader;
    let (sa, sb) = (a.status().await, b.status().await);
    assert_eq!(
        sa.status.totals.connected + sb.status.totals.connected,
        1,
        "one node bridged the call"
    );
    let bridged = if sa.status.totals.connected == 1 {
        &sa
    } else {
        &sb
    };
    assert!(bridged.media.relayed_to_agent > 20, "{:?}", bridged.media);
    assert!(bridged.media.relayed_to_caller > 20, "{:?}", bridged.media);
    let log = std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default();
    assert!(
        !log.contains("edge guard"),
        "no second offer to the busy agent:\n{log}"
    );
    nats::remove_cluster(&url, &cluster).await;
}
