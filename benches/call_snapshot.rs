//! Per-call CPU with call snapshots on and off (issue 12: snapshots may cost at most 15 % of a
//! call). One call is the whole SIP life of a call through the sans-IO call layer: the caller's
//! INVITE and ACK, the offer to the agent and their 200, the bridge, the caller's BYE, with every
//! message, media command and event taken off the manager. With snapshots on, every snapshot
//! the call produces is also taken and turned into the JSON the writer stores (the database
//! round trip itself is the writer task's, batched, and not on the call path).

use acd::call::{AgentRecord, CallManager, ManagerConfig};
use acd::routing::Dialplan;
use acd::sip::auth::{ha1, Algorithm, Credentials};
use acd::sip::endpoint::{Endpoint, EndpointConfig};
use acd::sip::transaction::{Peer, Transport};
use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
retry_s = 0
[[number]]
dial = "100"
queue = "sales"
"#;
const SDP: &str = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn peer(port: u16) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
    }
}

fn header(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_default()
        .to_string()
}

struct Rig {
    m: CallManager,
    now: Instant,
    snapshots: bool,
    json: usize,
}

impl Rig {
    fn new(snapshots: bool) -> Rig {
        let now = Instant::now();
        let ep = Endpoint::new(
            EndpointConfig {
                algorithms: vec![Algorithm::Md5],
                ..EndpointConfig::default()
            },
            now,
            1_000_000,
        );
        let mut m = CallManager::new(
            ManagerConfig {
                advertise: "127.0.0.1".parse().unwrap(),
                sip_port: 5060,
                tls_port: None,
                rtp_low: 20000,
                rtp_high: 20100,
                qualify_every: None,
                lookup_budget: None,
                country: acd::context::e164::Country::by_iso("US").unwrap(),
                max_calls: 100,
                max_calls_per_source: 100,
                retry_after_s: 5,
                trunks: Vec::new(),
            },
            ep,
            Dialplan::parse(PLAN, "bench").unwrap(),
        );
        m.set_snapshots(snapshots);
        m.set_agents(
            now,
            vec![AgentRecord {
                id: "1001".into(),
                name: "A".into(),
                credentials: Credentials::from_password("1001", "acd", "pw"),
                skills: HashMap::from([("sales".to_string(), 5)]),
                wrapup: None,
            }],
        );
        let mut r = Rig {
            m,
            now,
            snapshots,
            json: 0,
        };
        r.register(0);
        r
    }

    fn send(&mut self, port: u16, msg: &str) -> Vec<String> {
        self.m.handle_sip(self.now, peer(port), msg.as_bytes());
        self.drain()
    }

    /// Everything the manager has to say, as the core would take it.
    fn drain(&mut self) -> Vec<String> {
        let out: Vec<String> = std::iter::from_fn(|| self.m.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .collect();
        while self.m.poll_media().is_some() {}
        while self.m.poll_event().is_some() {}
        if self.snapshots {
            while let Some(w) = self.m.poll_snapshot(self.now) {
                if let Some(s) = w.body {
                    self.json += serde_json::to_string(&s).unwrap().len();
                }
            }
        }
        out
    }

    /// Registers agent 1001 (again every so often: each call moves the clock 40 s).
    fn register(&mut self, k: u64) {
        let reg = |auth: &str| {
            format!("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKr{}\r\nFrom: <sip:1001@acd>;tag=r\r\nTo: <sip:1001@acd>\r\nCall-ID: reg{k}\r\nCSeq: {} REGISTER\r\nContact: <sip:1001@127.0.0.1:7001>\r\n{auth}Content-Length: 0\r\n\r\n", auth.len(), if auth.is_empty() { 1 } else { 2 })
        };
        let out = self.send(7001, &reg(""));
        let nonce = out[0]
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let h1 = ha1(Algorithm::Md5, "1001", "acd", "pw");
        let h2 = Algorithm::Md5.hash("REGISTER:sip:127.0.0.1");
        let resp = Algorithm::Md5.hash(&format!("{h1}:{nonce}:00000001:x:auth:{h2}"));
        let auth = format!("Authorization: Digest username=\"1001\", realm=\"acd\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"x\"\r\n");
        self.send(7001, &reg(&auth));
    }

    /// One call from INVITE to BYE.
    fn call(&mut self, n: u64) {
        if n.is_multiple_of(50) {
            self.register(n);
        }
        let cid = format!("bench{n}");
        let invite = format!("INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK{cid}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:c@127.0.0.1:5000>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
        let out = self.send(5000, &invite);
        let ok = out
            .iter()
            .find(|m| m.starts_with("SIP/2.0 200"))
            .expect("200");
        let to = header(ok, "To");
        let ack = format!("ACK sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bKa{cid}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
        let out = self.send(5000, &ack);
        let inv = out
            .iter()
            .find(|m| m.starts_with("INVITE"))
            .expect("offer")
            .clone();
        let body = SDP.replace("6000", "7002");
        let answer = format!("SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=a{n}\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:7001>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", header(&inv, "Via"), header(&inv, "From"), header(&inv, "To"), header(&inv, "Call-ID"), body.len());
        self.send(7001, &answer);
        // Talking: the snapshot window passes (the connected call is written once).
        self.now += Duration::from_secs(1);
        self.m.handle_timeout(self.now);
        self.drain();
        let bye = format!("BYE sip:acd@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bKb{cid}\r\nFrom: <sip:+15551234567@x>;tag=c\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n");
        self.send(5000, &bye);
        // Let the transactions finish so the tables stay small.
        self.now += Duration::from_secs(40);
        self.m.handle_timeout(self.now);
        self.drain();
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("call_snapshot");
    for (name, on) in [
        ("one call, snapshots off", false),
        ("one call, snapshots on", true),
    ] {
        let mut r = Rig::new(on);
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                r.call(n)
            })
        });
        if on {
            println!(
                "snapshot JSON written per call: {} bytes",
                r.json / n.max(1) as usize
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
