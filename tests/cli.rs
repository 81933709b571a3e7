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
