//! Calls survive a crash: the `acd` binary is killed with SIGKILL (no chance to say goodbye)
//! and started again on the same database while (a) two real phones talk, (b) callers wait in
//! two queues, (c) an agent's phone rings, (d) a caller is in the IVR menu. The new process takes
//! each call over: (a) audio flows both ways again and a later BYE ends the call with 200,
//! (b) the callers reach agents in the order they came, (c) the call is offered again, (d) the
//! menu plays again and a digit still routes. The same with SIGTERM under
//! `shutdown = "resume"`, on SQLite and on PostgreSQL; and `--drain` (see `drain.rs`).

#[path = "../common/mod.rs"]
mod common;
mod desk;
mod drain;

use desk::desk_state_is_kept;

use acd::call::snapshot::SavedPhase;
use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One acd process with fixed ports, so the next one listens where the phones expect it.
struct Acd {
    child: Child,
    http: SocketAddr,
}

struct Node {
    dir: PathBuf,
    sip: SocketAddr,
    http: SocketAddr,
    db: String,
    config: PathBuf,
}

impl Node {
    fn new(dir: &Path, db: String, shutdown: &str) -> Node {
        Node::with_plan(dir, db, shutdown, SIMPLE_PLAN)
    }

    fn with_plan(dir: &Path, db: String, shutdown: &str, dialplan: &str) -> Node {
        let sip: SocketAddr = format!("127.0.0.1:{}", ports(2)).parse().unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", ports(2)).parse().unwrap();
        let rtp = ports(100);
        let plan = dir.join("dialplan.toml");
        std::fs::write(&plan, dialplan).unwrap();
        let config = dir.join("acd.toml");
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
url = "{db}"
spool_dir = "{spool}"
[media]
rtp_ports = "{rtp}-{rtp_high}"
recordings_dir = "{rec}"
[calls]
shutdown = "{shutdown}"
"#,
                plan = plan.display(),
                spool = dir.join("spool").display(),
                rec = dir.join("rec").display(),
                rtp_high = rtp + 99,
            ),
        )
        .unwrap();
        Node {
            dir: dir.to_path_buf(),
            sip,
            http,
            db,
            config,
        }
    }

    /// Starts acd and waits for its "acd is running" line.
    async fn start(&self, demo: bool, n: u32) -> Acd {
        self.start_with(demo, n, &[]).await
    }

    /// Like [`Node::start`], with more `acd serve` flags.
    async fn start_with(&self, demo: bool, n: u32, flags: &[&str]) -> Acd {
        let log = std::fs::File::create(self.dir.join(format!("acd-{n}.log"))).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_acd"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--db")
            .arg(&self.db);
        cmd.arg("serve");
        if demo {
            cmd.args(["--demo", "--demo-password", PASSWORD]);
        }
        cmd.args(flags);
        let mut child = cmd
            .env("ACD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("acd runs");
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(l)) = lines.next_line().await {
                if l.starts_with("acd is running") {
                    return;
                }
            }
            panic!(
                "acd exited before it was running; see {}",
                self.dir.display()
            );
        })
        .await
        .expect("acd starts within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Acd {
            child,
            http: self.http,
        }
    }
}

impl Node {
    /// Waits until a call's snapshot in the database is in a phase `is` accepts, so a kill
    /// after it leaves that phase behind for the next start.
    async fn saved(&self, what: &str, is: impl Fn(&SavedPhase) -> bool) {
        self.saved_n(what, 1, is).await
    }

    /// Like [`Node::saved`], for `n` calls.
    async fn saved_n(&self, what: &str, n: usize, is: impl Fn(&SavedPhase) -> bool) {
        let store = acd::context::Store::open(&self.db).await.unwrap();
        let is = &is;
        let store = &store;
        eventually(what, || async move {
            let s = store.load_snapshots().await.ok()?;
            (s.iter()
                .filter(|(_, s)| s.as_ref().is_ok_and(|s| is(&s.phase)))
                .count()
                >= n)
                .then_some(())
        })
        .await;
    }
}

impl Acd {
    /// Ends the process: `kill` is SIGKILL (no goodbye), `term` is SIGTERM.
    async fn stop(mut self, how: &str) {
        if how == "kill" {
            self.child.start_kill().unwrap();
        } else {
            self.signal("TERM");
        }
        self.child.wait().await.unwrap();
    }

    /// Sends the process a signal (`TERM`, `USR1`, …).
    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("acd is running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to end by itself; its exit status.
    async fn exited(mut self, limit: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("acd did not stop within {limit:?}"))
            .unwrap()
    }

    /// The one call of the test has ended, after it reached an agent on this process.
    async fn one_call_connected_and_ended(&self, token: &str) {
        let s = self
            .wait(token, "the call ended", Duration::from_secs(10), |s| {
                s["status"]["calls"] == 0
            })
            .await;
        assert_eq!(s["status"]["totals"]["connected"], 1, "{s:#}");
    }

    async fn status(&self, token: &str) -> serde_json::Value {
        http::get(self.http, "/api/status", Some(token))
            .await
            .json()
    }

    /// Polls the status until `cond` holds.
    async fn wait(
        &self,
        token: &str,
        what: &str,
        limit: Duration,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let s = self.status(token).await;
            if cond(&s) {
                return s;
            }
            if tokio::time::Instant::now() > end {
                panic!("timed out waiting for {what}; last status: {s:#}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn agent_state(s: &serde_json::Value, id: &str) -> String {
    s["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == id))
        .map(|a| a["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Callers waiting in all queues, from the status.
fn waiting(s: &serde_json::Value) -> u64 {
    s["queues"]
        .as_array()
        .map(|q| q.iter().filter_map(|q| q["waiting"].as_u64()).sum())
        .unwrap_or(0)
}

/// The callers (the display name acd puts in From) of the INVITEs a SIPp agent running with
/// `-trace_msg` in `dir` received, in the order it received them.
fn invited_callers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.ends_with("_messages.log") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for block in text.split("----------------------------------------------- ") {
            let mut lines = block.lines().skip(1);
            if !lines.next().is_some_and(|l| l.contains("message received")) {
                continue;
            }
            let mut lines = lines.skip_while(|l| l.trim().is_empty());
            if !lines.next().is_some_and(|l| l.starts_with("INVITE ")) {
                continue;
            }
            let from = lines
                .find_map(|l| l.strip_prefix("From:"))
                .and_then(|f| f.split('"').nth(1))
                .unwrap_or_default();
            out.push(from.to_string());
        }
    }
    out
}

fn baresip(dir: &Path, sip: SocketAddr, user: &str, register: bool, args: &[&str]) -> Child {
    baresip::spawn_at(dir, sip, user, &baresip::Phone::default(), register, args)
}

/// A baresip caller talks to a baresip agent; acd dies (`kill -9`, or SIGTERM with
/// `shutdown = "resume"`) and starts again on the same database.
async fn a_call_in_progress_survives(db: String, dir: &Path, how: &str) {
    let shutdown = if how == "term" { "resume" } else { "end" };
    let node = Node::new(dir, db, shutdown);
    let first = node.start(true, 1).await;
    let token = http::login(first.http, "sup", PASSWORD).await;
    let _agent = baresip(dir, node.sip, "1002", true, &[]);
    first
        .wait(
            &token,
            "baresip 1002 registered",
            Duration::from_secs(15),
            |s| agent_state(s, "1002") == "idle",
        )
        .await;
    // The caller hangs up (BYE) 25 s after it started, long after the restart.
    let dial = format!("/dial sip:200@{}", node.sip);
    let mut caller = baresip(dir, node.sip, "caller", false, &["-e", &dial, "-t", "25"]);
    first
        .wait(&token, "audio both ways", Duration::from_secs(15), |s| {
            s["media"]["relayed_to_agent"].as_u64() > Some(20)
                && s["media"]["relayed_to_caller"].as_u64() > Some(20)
        })
        .await;
    first.stop(how).await;

    let second = node.start(false, 2).await;
    // The desk session of the first run still opens the status (sessions are kept too).
    let s = second
        .wait(
            &token,
            "audio both ways again",
            Duration::from_secs(5),
            |s| {
                s["media"]["relayed_to_agent"].as_u64() > Some(20)
                    && s["media"]["relayed_to_caller"].as_u64() > Some(20)
            },
        )
        .await;
    assert_eq!(s["status"]["calls"], 1, "{s:#}");
    assert!(
        agent_state(&s, "1002").starts_with("busy"),
        "the agent is still busy with the call: {s:#}"
    );
    // The caller's BYE ends the call on the new process: 200, not 481.
    let s = second
        .wait(&token, "the caller's BYE", Duration::from_secs(30), |s| {
            s["status"]["totals"]["ended"] == 1
        })
        .await;
    assert_eq!(s["status"]["calls"], 0);
    let _ = caller.wait().await;
    let log = std::fs::read_to_string(dir.join("baresip-caller.log")).unwrap_or_default();
    assert!(!log.contains(" 481 "), "the BYE was answered 481:\n{log}");
    // Its snapshot is gone with it: a third start would find nothing to take over.
    let store = acd::context::Store::open(&node.db).await.unwrap();
    let left = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = store.count_snapshots().await.unwrap();
            if n == 0 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(left.ok(), Some(0), "the ended call's snapshot is deleted");
}

/// The PostgreSQL tests share one database, whose snapshots every start takes over: one at a time.
static PG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Snapshots, registrations and desk choices other tests' servers left in the shared PostgreSQL database
/// (those servers are dropped, not stopped) would be taken over too: each test starts from none.
async fn clean_slate(db: &str) {
    let store = acd::context::Store::open(db).await.unwrap();
    let keys: Vec<String> = store
        .load_snapshots()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    store.delete_snapshots(&keys).await.unwrap();
    for (agent, _) in store.load_bindings(0).await.unwrap() {
        store.save_bindings(&agent, &[]).await.unwrap();
    }
    for (agent, ..) in store.load_desks().await.unwrap() {
        store
            .save_desk(&agent, &acd::acd::Desk::Ready, None)
            .await
            .unwrap();
    }
}

/// The caller is waiting while agent 1001's phone rings; acd dies and starts again. The new
/// process CANCELs the old ring (ACKing its 487), offers the call again, the agent answers and
/// later hangs up, and the caller — who answered the new process's re-INVITE — gets the BYE.
async fn a_ringing_call_is_offered_again(db: String, dir: &Path, how: &str) {
    let shutdown = if how == "term" { "resume" } else { "end" };
    let node = Node::new(dir, db, shutdown);
    let first = node.start(true, 1).await;
    let token = http::login(first.http, "sup", PASSWORD).await;
    let agent = phone_at(
        node.sip,
        dir,
        "1001",
        "agent_rings_through_restart.xml",
        &["-m", "2", "-rtp_echo"],
    )
    .await;
    first
        .wait(&token, "1001 idle", Duration::from_secs(10), |s| {
            agent_state(s, "1001") == "idle"
        })
        .await;
    let caller = sipp(
        node.sip,
        dir,
        "caller_resumed_waits.xml",
        &["-s", "100", "-key", "caller", "+15550000001", "-m", "1"],
    );
    node.saved("the ringing phase is saved", |p| {
        matches!(p, SavedPhase::Ringing { .. })
    })
    .await;
    first.stop(how).await;
    let second = node.start(false, 2).await;
    agent.success(Duration::from_secs(30)).await;
    caller.success(Duration::from_secs(30)).await;
    second.one_call_connected_and_ended(&token).await;
}

const MENU_PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
[[number]]
dial = "100"
queue = "sales"
menu = "main"
[[menu]]
name = "main"
timeout_s = 30
default = "sales"
options = { "1" = "sales" }
"#;

/// The caller is in the IVR menu when acd is killed: the next process plays the menu to them
/// again, and their digit (pressed after the re-INVITE) still routes them to an agent.
async fn a_caller_in_the_menu_hears_it_again(db: String, dir: &Path, how: &str) {
    let shutdown = if how == "term" { "resume" } else { "end" };
    let node = Node::with_plan(dir, db, shutdown, MENU_PLAN);
    let first = node.start(true, 1).await;
    let token = http::login(first.http, "sup", PASSWORD).await;
    let agent = phone_at(
        node.sip,
        dir,
        "1001",
        "agent_hangup.xml",
        &["-m", "1", "-rtp_echo"],
    )
    .await;
    let caller = sipp(
        node.sip,
        dir,
        "caller_resumed_digit.xml",
        &["-s", "100", "-key", "caller", "+15550000002", "-m", "1"],
    );
    node.saved("the menu phase is saved", |p| {
        matches!(p, SavedPhase::Menu { .. })
    })
    .await;
    first.stop(how).await;
    let second = node.start(false, 2).await;
    // The menu plays again from the new process before the caller has chosen anything.
    second
        .wait(
            &token,
            "the menu plays again",
            Duration::from_secs(10),
            |s| s["media"]["prompt_frames"].as_u64() > Some(10),
        )
        .await;
    agent.success(Duration::from_secs(30)).await;
    caller.success(Duration::from_secs(30)).await;
    second.one_call_connected_and_ended(&token).await;
}

/// Five callers wait in two queues (none of the agents is in) when acd dies; the next process
/// puts them back in their queues in the order they came, so when the agents arrive each one
/// is offered its queue's callers oldest first.
async fn waiting_callers_keep_their_order(db: String, dir: &Path, how: &str) {
    let shutdown = if how == "term" { "resume" } else { "end" };
    let node = Node::new(dir, db, shutdown);
    let first = node.start(true, 1).await;
    let token = http::login(first.http, "sup", PASSWORD).await;
    let sales = ["+15550000101", "+15550000102", "+15550000103"];
    let support = ["+15550000201", "+15550000202"];
    // Interleaved, each one waiting before the next calls, so the order is known.
    let arrivals = [
        ("100", sales[0]),
        ("200", support[0]),
        ("100", sales[1]),
        ("200", support[1]),
        ("100", sales[2]),
    ];
    let mut callers = Vec::new();
    for (i, (number, from)) in arrivals.into_iter().enumerate() {
        callers.push(sipp(
            node.sip,
            dir,
            "caller_resumed_waits.xml",
            &["-s", number, "-key", "caller", from, "-m", "1"],
        ));
        let n = i as u64 + 1;
        first
            .wait(&token, "the caller waits", Duration::from_secs(10), |s| {
                waiting(s) == n
            })
            .await;
    }
    node.saved_n("every caller's wait is saved", arrivals.len(), |p| {
        matches!(p, SavedPhase::Waiting { .. })
    })
    .await;
    first.stop(how).await;

    // Demo again: the SIPp agents register with MD5, which only demo mode accepts.
    let second = node.start(true, 2).await;
    second
        .wait(
            &token,
            "the callers wait again",
            Duration::from_secs(10),
            |s| waiting(s) == arrivals.len() as u64,
        )
        .await;
    let mut agents = Vec::new();
    for (user, calls) in [("1001", sales.len()), ("1002", support.len())] {
        let own = dir.join(user);
        std::fs::create_dir_all(&own).unwrap();
        let calls = calls.to_string();
        let args = ["-m", &calls, "-rtp_echo", "-trace_msg"];
        agents.push(phone_at(node.sip, &own, user, "agent_hangup.xml", &args).await);
    }
    for agent in agents {
        agent.success(Duration::from_secs(40)).await;
    }
    for caller in callers {
        caller.success(Duration::from_secs(20)).await;
    }
    assert_eq!(
        invited_callers(&dir.join("1001")),
        sales,
        "sales, oldest first"
    );
    assert_eq!(
        invited_callers(&dir.join("1002")),
        support,
        "support, oldest first"
    );
    let s = second
        .wait(&token, "every call ended", Duration::from_secs(10), |s| {
            s["status"]["calls"] == 0
        })
        .await;
    assert_eq!(s["status"]["totals"]["connected"], 5, "{s:#}");
}

/// Each case, with acd killed (`kill -9`) and stopped with SIGTERM under
/// `shutdown = "resume"`, on SQLite and on PostgreSQL.
macro_rules! survives {
    ($($case:ident => $test:ident,)*) => {$(
        mod $case {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kill_9_on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$test(sqlite(dir.path()), dir.path(), "kill").await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sigterm_with_shutdown_resume_on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$test(sqlite(dir.path()), dir.path(), "term").await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kill_9_on_postgres() {
                let _one = PG.lock().await;
                let dir = tempfile::tempdir().unwrap();
                super::$test(postgres().await, dir.path(), "kill").await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sigterm_with_shutdown_resume_on_postgres() {
                let _one = PG.lock().await;
                let dir = tempfile::tempdir().unwrap();
                super::$test(postgres().await, dir.path(), "term").await;
            }
        }
    )*};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_desk_choice_is_saved_by_a_sigterm_on_postgres() {
    let _one = PG.lock().await;
    let dir = tempfile::tempdir().unwrap();
    desk::a_last_desk_choice_is_saved_by_the_stop(postgres().await, dir.path()).await;
}

survives! {
    during_a_call => a_call_in_progress_survives,
    while_callers_wait => waiting_callers_keep_their_order,
    while_an_agent_rings => a_ringing_call_is_offered_again,
    while_a_caller_is_in_the_menu => a_caller_in_the_menu_hears_it_again,
    desk_choices => desk_state_is_kept,
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}/acd.db", dir.display())
}

/// The shared PostgreSQL database, emptied of other tests' snapshots.
async fn postgres() -> String {
    let db = pg::url().await;
    clean_slate(&db).await;
    db
}
