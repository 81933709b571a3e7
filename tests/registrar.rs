//! Agent registration end to end over UDP with a small digest client: SHA-256 offered first and
//! used, MD5 accepted, identical 401s for unknown users and wrong passwords, nonce-count replay
//! refused, Min-Expires, un-REGISTER, and agents only registering themselves.

mod common;

use acd::sip::auth::{ha1, Algorithm};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    cseq: u32,
    call_id: String,
}

struct Answer {
    code: u16,
    text: String,
}

impl Answer {
    fn challenges(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
            .map(str::to_string)
            .collect()
    }
}

fn param(ch: &str, name: &str) -> String {
    let i = ch
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("{name} in {ch}"));
    let v = &ch[i + name.len() + 1..];
    let v = v.split(',').next().unwrap().trim();
    v.trim_matches('"').to_string()
}

impl Client {
    fn new(server: SocketAddr) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Client {
            sock,
            server,
            cseq: 0,
            call_id: format!("reg-{:x}", rand::random::<u64>()),
        }
    }

    fn register(
        &mut self,
        user: &str,
        to_user: &str,
        expires: &str,
        contact: &str,
        authz: Option<String>,
    ) -> Answer {
        self.cseq += 1;
        let port = self.sock.local_addr().unwrap().port();
        let msg = format!(
            "REGISTER sip:{srv} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{b:x};rport\r\nFrom: <sip:{user}@{srv}>;tag=f{port}\r\nTo: <sip:{to_user}@{srv}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\nExpires: {expires}\r\nMax-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n",
            srv = self.server,
            b = rand::random::<u64>(),
            cid = self.call_id,
            cseq = self.cseq,
            auth = authz.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default(),
        );
        self.sock.send_to(msg.as_bytes(), self.server).unwrap();
        let mut buf = [0u8; 8192];
        let n = self.sock.recv(&mut buf).expect("an answer");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
        Answer { code, text }
    }
}

fn authorization(
    ch: &str,
    alg: Algorithm,
    user: &str,
    password: &str,
    uri: &str,
    nc: u32,
) -> String {
    let (realm, nonce) = (param(ch, "realm"), param(ch, "nonce"));
    let ha1 = ha1(alg, user, &realm, password);
    let ha2 = alg.hash(&format!("REGISTER:{uri}"));
    let nc = format!("{nc:08x}");
    let resp = alg.hash(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"c0ffee\", opaque=\"acd\"",
        alg.name()
    )
}

impl Client {
    /// REGISTER, take challenge number `which` (0 = first offered), answer it with `alg`.
    #[allow(clippy::too_many_arguments)]
    fn authed(
        &mut self,
        user: &str,
        to_user: &str,
        expires: &str,
        contact: &str,
        password: &str,
        which: usize,
        alg: Algorithm,
    ) -> Answer {
        let ch = self
            .register(user, to_user, expires, contact, None)
            .challenges();
        let uri = format!("sip:{}", self.server);
        let auth = authorization(&ch[which], alg, user, password, &uri, 1);
        self.register(user, to_user, expires, contact, Some(auth))
    }
}

async fn server() -> common::TestServer {
    let srv = common::start_opts(None, |_| {}, false).await;
    let skills = acd::context::parse_skills("sales:5").unwrap();
    srv.running
        .store
        .add_agent("2001", "Dana", "acd", "pa55word", &skills)
        .await
        .unwrap();
    srv.running
        .store
        .add_agent("2002", "Eli", "acd", "other-pw", &skills)
        .await
        .unwrap();
    // The running server picks agents up from the database within reload_s.
    srv.wait_for("agents loaded", Duration::from_secs(5), |s| {
        s.agents.len() == 2
    })
    .await;
    srv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_offered_first_and_used_then_unregister() {
    let srv = server().await;
    let uri = format!("sip:{}", srv.sip());
    let contact = "<sip:2001@127.0.0.1:7777>";
    let done = tokio::task::spawn_blocking({
        let server = srv.sip();
        move || {
            let mut c = Client::new(server);
            let a = c.register("2001", "2001", "600", contact, None);
            assert_eq!(a.code, 401);
            let ch = a.challenges();
            assert_eq!(ch.len(), 2);
            assert!(
                ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"),
                "{ch:?}"
            );
            let auth = authorization(&ch[0], Algorithm::Sha256, "2001", "pa55word", &uri, 1);
            let ok = c.register("2001", "2001", "600", contact, Some(auth.clone()));
            assert_eq!(ok.code, 200, "{}", ok.text);
            assert!(
                ok.text
                    .contains("Contact: <sip:2001@127.0.0.1:7777>;expires=600"),
                "{}",
                ok.text
            );
            // The same nonce-count again is a replay.
            let replay = c.register("2001", "2001", "600", contact, Some(auth));
            assert_eq!(replay.code, 401);
            c
        }
    })
    .await
    .unwrap();
    srv.wait_for("2001 idle", Duration::from_secs(5), |s| {
        common::TestServer::agent_state(s, "2001") == "Idle"
    })
    .await;
    tokio::task::spawn_blocking(move || {
        let mut c = done;
        let bye = c.authed("2001", "2001", "0", "*", "pa55word", 1, Algorithm::Md5);
        assert_eq!(bye.code, 200, "{}", bye.text);
        assert!(
            !bye.text.contains("\r\nContact:"),
            "no bindings left: {}",
            bye.text
        );
    })
    .await
    .unwrap();
    srv.wait_for("2001 offline", Duration::from_secs(5), |s| {
        common::TestServer::agent_state(s, "2001") == "Offline"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let srv = server().await;
    let server = srv.sip();
    tokio::task::spawn_blocking(move || {
        let shape = |a: &Answer| -> Vec<String> {
            a.text
                .lines()
                .map(|l| l.split(':').next().unwrap_or("").to_string())
                .collect()
        };
        let wrong = Client::new(server).authed(
            "2001",
            "2001",
            "600",
            "<sip:2001@127.0.0.1:7777>",
            "nope",
            0,
            Algorithm::Sha256,
        );
        let ghost = Client::new(server).authed(
            "9999",
            "9999",
            "600",
            "<sip:9999@127.0.0.1:7777>",
            "nope",
            0,
            Algorithm::Sha256,
        );
        assert_eq!((wrong.code, ghost.code), (401, 401));
        assert_eq!(shape(&wrong), shape(&ghost), "same headers either way");
        assert!(!wrong.text.contains("stale"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_too_brief_and_registering_someone_else() {
    let srv = server().await;
    let server = srv.sip();
    tokio::task::spawn_blocking(move || {
        let mut c = Client::new(server);
        let brief = c.authed(
            "2001",
            "2001",
            "30",
            "<sip:2001@127.0.0.1:7777>",
            "pa55word",
            0,
            Algorithm::Md5,
        );
        assert_eq!(brief.code, 423);
        assert!(brief.text.contains("Min-Expires: 60"), "{}", brief.text);
        // Agent 2001 with a correct password may not bind agent 2002's phone.
        let other = c.authed(
            "2001",
            "2002",
            "600",
            "<sip:2002@127.0.0.1:7777>",
            "pa55word",
            0,
            Algorithm::Md5,
        );
        assert_eq!(other.code, 403);
    })
    .await
    .unwrap();
    let s = srv.status().await;
    assert_eq!(s.status.registered_agents, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_gets_the_address_banned() {
    let srv = common::start_opts(None, |c| c.sip.auth_max_failures = 3, false).await;
    let skills = acd::context::parse_skills("sales").unwrap();
    srv.running
        .store
        .add_agent("2001", "Dana", "acd", "pa55word", &skills)
        .await
        .unwrap();
    srv.wait_for("agents loaded", Duration::from_secs(5), |s| {
        s.agents.len() == 1
    })
    .await;
    let server = srv.sip();
    tokio::task::spawn_blocking(move || {
        let mut c = Client::new(server);
        for guess in ["1234", "password", "2001"] {
            let a = c.authed(
                "2001",
                "2001",
                "600",
                "<sip:2001@127.0.0.1:7777>",
                guess,
                0,
                Algorithm::Sha256,
            );
            assert_eq!(a.code, 401);
        }
        // Banned now: even the right password and a fresh REGISTER get 403 with a reason.
        let right = c.register("2001", "2001", "600", "<sip:2001@127.0.0.1:7777>", None);
        assert_eq!(right.code, 403);
        assert!(
            right.text.contains("too many failed logins"),
            "{}",
            right.text
        );
    })
    .await
    .unwrap();
    let s = srv.status().await;
    assert_eq!(s.status.sip.banned, 1);
    assert_eq!(s.status.registered_agents, 0);
}
