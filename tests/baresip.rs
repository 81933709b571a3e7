//! A real softphone as the agent: baresip registers with its password (digest), auto-answers,
//! and a SIPp caller is bridged to it with RTP both ways.

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Writes a baresip config dir for `user` (from tests/data/baresip, a copy of shared/peers/baresip; ports made unique).
fn baresip_dir(srv: &TestServer, user: &str) -> std::path::PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/baresip");
    let dir = srv.dir.path().join(format!("baresip-{user}"));
    std::fs::create_dir_all(&dir).unwrap();
    let base = ports(60);
    let config = std::fs::read_to_string(shared.join("config"))
        .expect("tests/data/baresip/config")
        .lines()
        .map(|l| {
            let key = l.split_whitespace().next().unwrap_or("");
            match key {
                "sip_listen" => format!("sip_listen\t\t127.0.0.1:{base}"),
                "rtp_ports" => format!("rtp_ports\t\t{}-{}", base + 10, base + 49),
                "cons_listen" => format!("cons_listen\t\t127.0.0.1:{}", base + 2),
                "ctrl_tcp_listen" => format!("ctrl_tcp_listen\t\t127.0.0.1:{}", base + 4),
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("config"), config + "\n").unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:{user}@127.0.0.1:{}>;auth_pass={PASSWORD};answermode=auto;audio_codecs=PCMA,PCMU;regint=600;ptime=20\n",
            srv.sip().port()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    dir
}

fn spawn_baresip(srv: &TestServer, user: &str) -> tokio::process::Child {
    let dir = baresip_dir(srv, user);
    let log = std::fs::File::create(srv.dir.path().join(format!("baresip-{user}.log"))).unwrap();
    Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .arg("-v")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("baresip is installed (apt-get install baresip-core)")
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
    assert_eq!(
        srv.status().await.status.registered_agents,
        1,
        "still registered, just not answering"
    );
}
