//! pjsua2 (pjproject 2.15 from PyPI `pjsua2-python`) as a phone: `tests/data/pjsua2/phone.py`
//! run by the Python named in `ACD_TEST_PJSUA2_PYTHON`, else the venv `.ci/run` makes in
//! `/opt/acd-pjsua2`, else `python3`; its
//! event lines in `pjsua2-<user>.log` under the test's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The Python with pjsua2, or a panic that says how to get one (never a silent pass).
pub fn python() -> String {
    let venv = "/opt/acd-pjsua2/bin/python";
    let py = std::env::var("ACD_TEST_PJSUA2_PYTHON").unwrap_or_else(|_| {
        let made = Path::new(venv).exists();
        (if made { venv } else { "python3" }).to_string()
    });
    let ok = std::process::Command::new(&py)
        .args(["-c", "import pjsua2"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "pjsua2 is missing for {py}: python3 -m venv /opt/acd-pjsua2 && \
         /opt/acd-pjsua2/bin/pip install pjsua2-python, then \
         ACD_TEST_PJSUA2_PYTHON=/opt/acd-pjsua2/bin/python (as .ci/run does)"
    );
    py
}

/// Starts the phone for `user` of the acd at `sip` with `args` (`--register`, `--dial 200`,
/// `--tone 1000`, `--record FILE`, `--hold-at 1`); returns it and its log.
pub fn spawn(base: &Path, sip: SocketAddr, user: &str, args: &[&str]) -> (Child, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pjsua2/phone.py");
    let log = base.join(format!("pjsua2-{user}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let port = super::ports(60).to_string();
    let child = Command::new(python())
        .arg(script)
        .args(["--server", &sip.to_string(), "--user", user])
        .args(["--password", super::PASSWORD, "--port", &port])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .expect("python runs");
    (child, log)
}

/// Waits until the phone's log has a line `line` (its events are whole lines).
pub async fn wait_line(log: &Path, line: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.trim() == line) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pjsua2 never said {line:?} within {limit:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The digits the phone reported receiving (RFC 4733), in order.
pub fn digits(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("dtmf "))
        .collect()
}
