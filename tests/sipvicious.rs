//! The scanner everyone points at a new SIP port (Debian's `sipvicious`), run against acd on
//! loopback: `svwar` cannot tell the demo agents' extensions from missing ones by REGISTER,
//! INVITE or OPTIONS, and `svcrack` guessing an agent's password is banned before it reaches
//! the right one, placed after 200 wrong ones in its dictionary.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// Runs a sipvicious tool bound to loopback for at most `limit` (then stops it); returns what
/// it printed and whether it finished by itself.
async fn run_for(tool: &str, args: &[String], dir: &Path, limit: Duration) -> (String, bool) {
    let log = dir.join(format!("{tool}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(tool)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} runs (apt-get install sipvicious): {e}"));
    let finished = tokio::time::timeout(limit, child.wait()).await.is_ok();
    let _ = child.kill().await;
    (std::fs::read_to_string(&log).unwrap_or_default(), finished)
}

async fn run(tool: &str, args: &[String], dir: &Path) -> String {
    let (text, finished) = run_for(tool, args, dir, Duration::from_secs(120)).await;
    assert!(finished, "{tool} did not finish in 120 s:\n{text}");
    text
}

fn target(srv: &TestServer) -> Vec<String> {
    let local = ports(1);
    vec![
        "-b".into(),
        "127.0.0.1".into(),
        "-x".into(),
        "127.0.0.1".into(),
        "-P".into(),
        local.to_string(),
        "-p".into(),
        srv.sip().port().to_string(),
    ]
}

/// svwar's result table: extension → what it saw.
fn found(report: &str) -> BTreeMap<String, String> {
    report
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() >= 4
                && cells[1].chars().all(|c| c.is_ascii_digit())
                && !cells[1].is_empty())
            .then(|| (cells[1].to_string(), cells[2].to_string()))
        })
        .collect()
}

async fn enumerate(method: &str) {
    let srv = start(None, |_| {}).await;
    let mut args = target(&srv);
    args.extend(["-m", method, "-e", "1000-1010", "--force", "-t", "0.05"].map(String::from));
    args.push("127.0.0.1".into());
    let report = run("svwar", &args, srv.dir.path()).await;
    let received = srv.status().await.status.sip.received;
    // svwar first asks for a made-up user; when that gets the same answer as real ones it
    // says so ("svwar will probably not work") and may stop there.
    assert!(
        received >= 2,
        "svwar's {method}s reached acd ({received} messages):\n{report}"
    );
    let seen = found(&report);
    // 1001-1003 exist (the demo agents); 1000 and 1004-1010 do not. Whatever svwar saw, it
    // must have seen it for every extension alike, or for none.
    let kinds: Vec<Option<&String>> = (1000..=1010).map(|e| seen.get(&e.to_string())).collect();
    assert!(
        kinds.windows(2).all(|w| w[0] == w[1]),
        "svwar -m {method} tells extensions apart: {seen:?}\n{report}"
    );
    assert!(
        !report.contains("Traceback"),
        "svwar ran to its end: {report}"
    );
    // And by hand, whatever svwar gave up on: an existing and a missing extension get the same
    // answer, header for header.
    assert_eq!(
        probe(&srv, method, "1001").await,
        probe(&srv, method, "1009").await,
        "{method} answers tell 1001 (an agent) from 1009 (nobody)"
    );
}

/// Sends one `method` for `ext` and returns its answer with everything that varies per
/// request (tags, nonces, Call-ID, branch) taken out.
async fn probe(srv: &TestServer, method: &str, ext: &str) -> Vec<String> {
    let sock = tokio::net::UdpSocket::bind(("127.0.0.1", ports(1)))
        .await
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let body = if method == "INVITE" {
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    } else {
        ""
    };
    let ctype = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let req = format!(
        "{method} sip:{ext}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKp{ext}\r\n\
         From: <sip:{ext}@127.0.0.1>;tag=p{ext}\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: probe-{ext}\r\n\
         CSeq: 1 {method}\r\nContact: <sip:{ext}@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n{ctype}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.send_to(req.as_bytes(), srv.sip()).await.unwrap();
    let mut buf = [0u8; 4096];
    let mut answer = Vec::new();
    // The final answer (skip 100 Trying).
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("SIP/2.0 1") {
            continue;
        }
        answer = text
            .lines()
            .map(|l| {
                let name = l.split(':').next().unwrap_or("");
                match name {
                    "To" | "From" | "Via" | "Call-ID" | "Contact" => name.to_string(),
                    "WWW-Authenticate" => l.split("nonce").next().unwrap_or("").to_string(),
                    _ => l.to_string(),
                }
            })
            .collect();
        break;
    }
    assert!(!answer.is_empty(), "{method} for {ext} got an answer");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svwar_register_cannot_tell_extensions_apart() {
    enumerate("REGISTER").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svwar_invite_cannot_tell_extensions_apart() {
    enumerate("INVITE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svwar_options_cannot_tell_extensions_apart() {
    enumerate("OPTIONS").await;
}

/// Runs svcrack against agent 1001 with 200 wrong passwords, then the right one.
async fn crack(srv: &TestServer, limit: Duration) -> (String, bool) {
    let dict = srv.dir.path().join("passwords.txt");
    let mut words: Vec<String> = (0..200).map(|i| format!("wrong{i:03}")).collect();
    words.push(PASSWORD.into());
    std::fs::write(&dict, words.join("\n") + "\n").unwrap();
    let mut args = target(srv);
    args.extend(["-u", "1001", "-d"].map(String::from));
    args.push(dict.display().to_string());
    args.push("127.0.0.1".into());
    run_for("svcrack", &args, srv.dir.path(), limit).await
}

/// The ban at work: after ~20 wrong answers every REGISTER from the address gets 403, so the
/// right password, 201st in the list, is never tried successfully (svcrack keeps retrying its
/// 21st guess against the 403 until it is stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn svcrack_is_banned_before_the_right_password() {
    let srv = start(None, |_| {}).await;
    let (report, _) = crack(&srv, Duration::from_secs(15)).await;
    assert!(
        !report.contains(PASSWORD),
        "svcrack found the password: {report}"
    );
    let s = srv.status().await;
    assert!(
        s.status.sip.banned > 0,
        "the guessing address was banned: {:?}\n{report}",
        s.status.sip
    );
    assert!(
        (20..=25).contains(&s.status.sip.auth_failures),
        "banned after about 20 wrong answers, not 200: {:?}",
        s.status.sip
    );
    assert_eq!(s.status.sip.registers_ok, 0, "no guess registered");
}

/// The control: with the ban off, the same run finds the password, so the test above fails if
/// the ban stops working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ban_svcrack_finds_the_password() {
    let srv = start(None, |c| c.sip.auth_ban_s = 0).await;
    let (report, finished) = crack(&srv, Duration::from_secs(60)).await;
    assert!(finished, "svcrack ends once it has the password: {report}");
    assert!(
        report.contains(PASSWORD),
        "svcrack found the password: {report}"
    );
}
