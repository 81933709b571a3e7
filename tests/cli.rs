//! The `acd` binary as an operator uses it: agent management, dialplan checks, config errors.

use std::process::{Command, Output};

fn acd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acd"))
        .args(args)
        .env("ACD_LOG", "warn")
        .output()
        .expect("acd runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn agents_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let o = acd(&[
        "--db",
        &db,
        "agents",
        "add",
        "1001",
        "--name",
        "Anna",
        "--password",
        "pw1234",
        "--skills",
        "sales:5,support:2",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&acd(&["--db", &db, "agents", "list"]));
    assert!(
        out.contains("1001") && out.contains("Anna") && out.contains("sales:5,support:2"),
        "{out}"
    );
    let dup = acd(&[
        "--db",
        &db,
        "agents",
        "add",
        "1001",
        "--name",
        "A",
        "--password",
        "pw1234",
    ]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(text(&dup).1.contains("agent '1001' already exists"));
    let bad = acd(&[
        "--db",
        &db,
        "agents",
        "add",
        "1002",
        "--name",
        "B",
        "--password",
        "pw1234",
        "--skills",
        "sales:99",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).1.contains("level must be 1..10"),
        "{:?}",
        text(&bad)
    );
    // A supervisor's change: new skills and the agent's own wrap-up, then back to the queues'.
    let set = acd(&[
        "--db",
        &db,
        "agents",
        "set",
        "1001",
        "--skills",
        "support:7",
        "--wrapup-s",
        "20",
    ]);
    assert!(set.status.success(), "{:?}", text(&set));
    let (out, _) = text(&acd(&["--db", &db, "agents", "list"]));
    let line = out.lines().find(|l| l.starts_with("1001")).unwrap();
    assert!(line.contains("20s") && line.ends_with("support:7"), "{out}");
    assert!(
        acd(&["--db", &db, "agents", "set", "1001", "--queue-wrapup"])
            .status
            .success()
    );
    let (out, _) = text(&acd(&["--db", &db, "agents", "list"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("1001") && l.contains("queue")),
        "{out}"
    );
    let nobody = acd(&[
        "--db", &db, "agents", "set", "nobody", "--skills", "sales:1",
    ]);
    assert!(
        text(&nobody).1.contains("no agent 'nobody'"),
        "{:?}",
        text(&nobody)
    );
    let nothing = acd(&["--db", &db, "agents", "set", "1001"]);
    assert!(
        text(&nothing).1.contains("nothing to change"),
        "{:?}",
        text(&nothing)
    );
    assert!(acd(&["--db", &db, "agents", "remove", "1001"])
        .status
        .success());
    let gone = acd(&["--db", &db, "agents", "remove", "1001"]);
    assert!(text(&gone).1.contains("no agent '1001'"));
    // The database holds hashes, never the password.
    let raw = std::fs::read(dir.path().join("cli.db")).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"pw1234"));
}

#[test]
fn check_dialplan_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let ok = acd(&[
        "check-dialplan",
        concat!(env!("CARGO_MANIFEST_DIR"), "/dialplans/default.toml"),
    ]);
    assert!(ok.status.success(), "{:?}", text(&ok));
    assert!(text(&ok).0.contains("100 -> sales"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[queue]]\nname = \"sales\"\nskill = \"sales\"\n\n[[number]]\ndial = \"100\"\nqueue = \"salez\"\n").unwrap();
    let o = acd(&["check-dialplan", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains("bad.toml:7: number '100' routes to unknown queue 'salez'"),
        "{err}"
    );
}

#[test]
fn bad_config_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acd.toml");
    std::fs::write(&cfg, "[sip]\nrealm = \"acd\"\nlisten = \"nonsense\"\n").unwrap();
    let o = acd(&["--config", cfg.to_str().unwrap(), "agents", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("acd.toml:3:"), "{:?}", text(&o));
}

#[test]
fn prompts_are_written_as_playable_wav() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    assert!(acd(&["prompts", "--out", out.to_str().unwrap()])
        .status
        .success());
    for f in ["welcome.wav", "hold.wav"] {
        let b = std::fs::read(out.join(f)).unwrap();
        let pcm = acd::media::prompt::read_wav(&b).unwrap();
        assert!(pcm.len() > 8000 / 2, "{f} has audio");
    }
}

#[test]
fn serve_reloads_on_sighup_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dialplans/default.toml"
    ))
    .unwrap()
    // The copy lives elsewhere: its prompts are where the demo's are.
    .replace(
        "\"../prompts/",
        concat!("\"", env!("CARGO_MANIFEST_DIR"), "/prompts/"),
    );
    std::fs::write(&plan, &good).unwrap();
    let db = format!("sqlite://{}/serve.db", dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_acd"))
        .args([
            "--db",
            &db,
            "serve",
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--rtp-ports",
            "19000-19100",
            "--dialplan",
            plan.to_str().unwrap(),
        ])
        .env("ACD_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = out.next().unwrap().unwrap();
    assert!(
        first.starts_with("acd is running: SIP 127.0.0.1:"),
        "{first}"
    );
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    // A broken plan is refused and the running one kept…
    std::fs::write(&plan, "[[number]]\ndial = \"1\"\nqueue = \"nope\"\n").unwrap();
    signal("-HUP");
    // …a fixed one is taken.
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(&plan, &good).unwrap();
    signal("-HUP");
    assert_eq!(
        out.next().unwrap().unwrap(),
        format!("dialplan reloaded from {}", plan.display())
    );
    signal("-TERM");
    assert_eq!(out.next().unwrap().unwrap(), "shutting down: ending calls");
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("dialplan not reloaded, keeping the running one")
            && err.contains("plan.toml:3:"),
        "{err}"
    );
}

#[test]
fn route_says_which_identity_it_used_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acd.toml");
    std::fs::write(
        &cfg,
        "[[trunk]]\nname = \"carrier\"\naddresses = [\"198.51.100.0/24\"]\n",
    )
    .unwrap();
    let db = format!("sqlite://{}/acd.db", dir.path().display());
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            cfg.to_str().unwrap(),
            "--db",
            &db,
            "route",
            "--from",
            "+15551230009",
            "--to",
            "100",
        ];
        args.extend_from_slice(extra);
        let o = acd(&args);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{err}");
        out
    };
    let out = run(&["--source", "198.51.100.7", "--pai", "+15551230002"]);
    assert!(
        out.contains("identity: +15551230002 (P-Asserted-Identity from trunk 'carrier')"),
        "{out}"
    );
    let out = run(&["--source", "203.0.113.5", "--pai", "+15551230002"]);
    assert!(out.contains("identity: +15551230009 (From header, unverified: 203.0.113.5 is not a trunk (its P-Asserted-Identity was ignored)); no callback through the trunk"), "{out}");
}

/// `serve --drain` turns SIGTERM into a drain (no call here, so it is over at once), and
/// SIGUSR1 drains whatever the flag says; both then stop cleanly.
#[test]
fn serve_drains_on_sigterm_with_drain_and_on_sigusr1() {
    use std::io::{BufRead, BufReader};
    for (flag, sig) in [(Some("--drain"), "-TERM"), (None, "-USR1")] {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}/serve.db", dir.path().display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_acd"))
            .args(["--db", &db, "serve", "--sip-listen", "127.0.0.1:0"])
            .args(["--http-listen", "127.0.0.1:0", "--rtp-ports", "19200-19300"])
            .args(flag)
            .env("ACD_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = out.next().unwrap().unwrap();
        assert!(first.starts_with("acd is running"), "{first}");
        assert!(Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let rest: Vec<String> = out.map_while(Result::ok).collect();
        assert_eq!(
            rest,
            [
                "draining: no new calls; waiting for the calls in progress to end",
                "drained",
                "shutting down: ending calls"
            ],
            "{flag:?} {sig}"
        );
        assert!(child.wait().unwrap().success());
    }
}
