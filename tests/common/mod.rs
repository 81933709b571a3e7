//! Shared test harness: an in-process acd on loopback with ephemeral SIP/HTTP ports, a temp
//! SQLite database and the demo agents, plus helpers to run SIPp and baresip against it.
#![allow(dead_code)]

pub mod baresip;
pub mod cdp;
pub mod desk;
pub mod http;
pub mod linphone;
pub mod nats;
pub mod pg;
pub mod pjsua2;
pub mod tone;

use acd::config::Config;
use acd::control::StatusReport;
use acd::serve::{self, Demo, Running};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::process::{Child, Command};

pub const PASSWORD: &str = "secret1";

/// Below Linux's ephemeral range (32768-60999), so no port handed out here can already be an
/// outgoing connection's or a `:0` bind's (the test binaries run one after another).
static NEXT_PORT: AtomicU16 = AtomicU16::new(20_000);

/// A block of `n` loopback ports unique within this test binary.
pub fn ports(n: u16) -> u16 {
    NEXT_PORT.fetch_add(n + (n & 1), Ordering::SeqCst)
}

pub struct TestServer {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub cfg: Config,
}

impl TestServer {
    pub fn sip(&self) -> SocketAddr {
        self.running.core.sip_addr
    }

    /// Stops this server (ending its calls) and starts a new one on the same database.
    pub async fn restart(mut self) -> TestServer {
        self.running.stop(false).await;
        self.running.store.close().await;
        let running = serve::start(&self.cfg, &Demo::default())
            .await
            .expect("server restarts");
        TestServer {
            running,
            dir: self.dir,
            cfg: self.cfg,
        }
    }

    pub async fn status(&self) -> StatusReport {
        self.running
            .core
            .status()
            .await
            .expect("core answers status")
    }

    /// Polls the status until `cond` holds; panics with the last status after `limit`.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        cond: impl Fn(&StatusReport) -> bool,
    ) -> StatusReport {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let s = self.status().await;
            if cond(&s) {
                return s;
            }
            if tokio::time::Instant::now() > end {
                panic!("timed out waiting for {what}; last status: {s:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until no call, queue entry or half-cancelled agent leg is left.
    pub async fn wait_idle(&self) -> StatusReport {
        let full = self.status().await.status.free_rtp_ports;
        let _ = full;
        self.wait_for("no call state left", Duration::from_secs(10), |s| {
            s.status.calls == 0 && s.status.acd_calls == 0 && s.status.stale_agent_legs == 0
        })
        .await
    }

    pub fn agent_state(s: &StatusReport, id: &str) -> String {
        s.agents
            .iter()
            .find(|a| a.id == id)
            .map(|a| format!("{:?}", a.state))
            .unwrap_or_default()
    }
}

/// The plan tests get unless they bring their own: the demo's queues without its menu and
/// rules, so a call to 100 goes straight to sales.
pub const SIMPLE_PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
[[queue]]
name = "support"
skill = "support"
[[number]]
dial = "100"
queue = "sales"
[[number]]
dial = "200"
queue = "support"
"#;

/// Starts acd with the demo agents; `dialplan` replaces the simple test plan.
pub async fn start(dialplan: Option<&str>, tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_opts(dialplan, tweak, true).await
}

/// Like [`start`]; without `demo` no agents are seeded and the configured digest algorithms apply.
pub async fn start_opts(
    dialplan: Option<&str>,
    tweak: impl FnOnce(&mut Config),
    demo: bool,
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::default();
    cfg.sip.listen = "127.0.0.1:0".parse().unwrap();
    cfg.http.listen = "127.0.0.1:0".parse().unwrap();
    cfg.database.url = format!("sqlite://{}/acd.db", dir.path().display());
    cfg.database.reload_s = 1;
    cfg.database.spool_dir = dir.path().join("spool");
    cfg.media.recordings_dir = dir.path().join("recordings");
    // SIPp UAS agents answer only their scenario, not OPTIONS pings; tests that want qualify
    // (baresip answers OPTIONS) turn it back on.
    cfg.sip.qualify_s = 0;
    // Phone-only agents: ready as soon as they register (desk tests turn this off).
    cfg.http.ready_on_register = true;
    // Every test peer is on loopback: trusted, like a trunk, so budgets and per-source caps do
    // not shape tests about something else (tests/flood_limits.rs turns this off).
    cfg.sip.trusted = ["127.0.0.1", "::1"]
        .iter()
        .map(|c| acd::sip::budget::Cidr::parse(c).unwrap())
        .collect();
    let base = ports(200);
    cfg.media.rtp_ports = format!("{base}-{}", base + 199);
    let p = dir.path().join("dialplan.toml");
    // Plans written here find the demo's recorded prompts where they are.
    let plan = dialplan.unwrap_or(SIMPLE_PLAN).replace(
        "\"../prompts/",
        concat!("\"", env!("CARGO_MANIFEST_DIR"), "/prompts/"),
    );
    std::fs::write(&p, plan).unwrap();
    cfg.dialplan = p;
    tweak(&mut cfg);
    let running = serve::start(
        &cfg,
        &Demo {
            enabled: demo,
            password: Some(PASSWORD.into()),
        },
    )
    .await
    .expect("server starts");
    TestServer { running, dir, cfg }
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A running SIPp process.
pub struct Sipp {
    pub child: Child,
    pub port: u16,
    pub media_port: u16,
    pub name: String,
    log: PathBuf,
}

/// Starts SIPp on its own SIP and media ports. `args` are extra SIPp flags.
pub fn sipp(server: SocketAddr, dir: &Path, scen: &str, args: &[&str]) -> Sipp {
    sipp_on(ports(1), server, dir, scen, args)
}

/// Like [`sipp`], on a SIP port chosen beforehand (one a dialplan names, say).
pub fn sipp_on(port: u16, server: SocketAddr, dir: &Path, scen: &str, args: &[&str]) -> Sipp {
    let media_port = ports(10);
    let log = dir.join(format!("sipp-{scen}-{port}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let child = Command::new("sipp")
        .arg(server.to_string())
        .arg("-sf")
        .arg(scenario(scen))
        .args([
            "-i",
            if server.is_ipv6() { "::1" } else { "127.0.0.1" },
            "-p",
            &port.to_string(),
            "-mp",
            &media_port.to_string(),
        ])
        .args([
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-buff_size",
            "1048576",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (apt-get install sip-tester)");
    Sipp {
        child,
        port,
        media_port,
        name: scen.to_string(),
        log,
    }
}

impl Sipp {
    /// Waits for SIPp to exit and asserts every call in its scenario succeeded.
    pub async fn success(mut self, limit: Duration) {
        let st = tokio::time::timeout(limit, self.child.wait()).await;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        match st {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => panic!("sipp {} failed ({s}):\n{tail}", self.name),
            Ok(Err(e)) => panic!("sipp {}: {e}", self.name),
            Err(_) => panic!("sipp {} did not finish in {limit:?}:\n{tail}", self.name),
        }
    }
}

/// Registers `user` with Contact pointing at `agent_port` (a SIPp UAS), via a one-shot SIPp.
pub async fn register(srv: &TestServer, user: &str, agent_port: u16, expires: u32) {
    register_at(srv.sip(), srv.dir.path(), user, agent_port, expires).await
}

/// Like [`register`], to the acd at `sip`, SIPp's log under `dir`.
pub async fn register_at(sip: SocketAddr, dir: &Path, user: &str, agent_port: u16, expires: u32) {
    let p = sipp(
        sip,
        dir,
        "register.xml",
        &[
            "-s",
            user,
            "-au",
            user,
            "-ap",
            PASSWORD,
            "-key",
            "agentport",
            &agent_port.to_string(),
            "-key",
            "expires",
            &expires.to_string(),
            "-m",
            "1",
        ],
    );
    p.success(Duration::from_secs(20)).await;
}

/// Starts a SIPp agent phone running `scen` (extra SIPp flags in `args`) against the acd at
/// `sip`, logs under `dir`, and registers it as `user` for an hour.
pub async fn phone_at(sip: SocketAddr, dir: &Path, user: &str, scen: &str, args: &[&str]) -> Sipp {
    let a = sipp(sip, dir, scen, args);
    register_at(sip, dir, user, a.port, 3600).await;
    a
}

/// Starts a SIPp agent phone running `scen` for `calls` calls, and registers it as `user`.
pub async fn agent(srv: &TestServer, user: &str, scen: &str, calls: u32, echo: bool) -> Sipp {
    let mut args = vec!["-m".to_string(), calls.to_string()];
    if echo {
        args.push("-rtp_echo".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = phone_at(srv.sip(), srv.dir.path(), user, scen, &refs).await;
    let u = user.to_string();
    srv.wait_for("agent idle", Duration::from_secs(5), move |s| {
        TestServer::agent_state(s, &u) == "Idle"
    })
    .await;
    a
}

/// Starts a SIPp caller dialling `number`; `hold_ms` is how long it stays before hanging up.
pub fn caller(srv: &TestServer, scen: &str, number: &str, hold_ms: u32, calls: u32) -> Sipp {
    caller_from(srv, scen, "+15551234567", number, hold_ms, calls)
}

/// Like [`caller`], calling from `from`.
pub fn caller_from(
    srv: &TestServer,
    scen: &str,
    from: &str,
    number: &str,
    hold_ms: u32,
    calls: u32,
) -> Sipp {
    caller_at(
        srv.sip(),
        srv.dir.path(),
        scen,
        from,
        number,
        hold_ms,
        calls,
    )
}

/// Like [`caller_from`], to the acd at `sip`, SIPp's log under `dir`.
pub fn caller_at(
    sip: SocketAddr,
    dir: &Path,
    scen: &str,
    from: &str,
    number: &str,
    hold_ms: u32,
    calls: u32,
) -> Sipp {
    sipp(
        sip,
        dir,
        scen,
        &[
            "-s",
            number,
            "-key",
            "caller",
            from,
            "-d",
            &hold_ms.to_string(),
            "-m",
            &calls.to_string(),
            "-l",
            &calls.to_string(),
        ],
    )
}

/// Polls `check` every 20 ms until it yields a value (for what the server writes off the
/// request path); panics naming `what` after 5 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..250 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// One INVITE from a fresh socket; the status line and Retry-After of the final answer.
pub async fn one_invite(sip: SocketAddr) -> (String, String) {
    let sock = tokio::net::UdpSocket::bind(("127.0.0.1", ports(1)))
        .await
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let inv = format!(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKdrain{port}\r\n\
         From: <sip:+15550001111@127.0.0.1>;tag=d\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: drain-{port}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sock.send_to(inv.as_bytes(), sip).await.unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("SIP/2.0 1") {
            continue;
        }
        let first = text.lines().next().unwrap_or("").to_string();
        return (first, header_of(&text, "Retry-After"));
    }
}

pub fn header_of(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or("")
        .to_string()
}
