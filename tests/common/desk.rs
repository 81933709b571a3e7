//! Helpers for desk tests: a server whose agents wait for the desk, SIPp phones that only
//! register, a desk WebSocket client, and the time SIPp saw an INVITE.

use super::{register, sipp, Sipp, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// acd with `plan`, demo agents and staff, agents offered calls only once Ready at the desk.
pub async fn server(plan: Option<&str>) -> TestServer {
    super::start(plan, |c| c.http.ready_on_register = false).await
}

/// A SIPp phone for `user` running `scen` (with `extra` flags), registered but not ready.
pub async fn phone(srv: &TestServer, user: &str, scen: &str, extra: &[&str]) -> Sipp {
    let p = sipp(srv.sip(), srv.dir.path(), scen, extra);
    register(srv, user, p.port, 3600).await;
    let u = user.to_string();
    srv.wait_for("phone registered", Duration::from_secs(5), move |s| {
        TestServer::agent_state(s, &u) == "LoggedOut"
    })
    .await;
    p
}

/// A desk WebSocket, as the page opens it.
pub struct DeskWs {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl DeskWs {
    pub async fn open(http: SocketAddr, token: &str) -> DeskWs {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{http}/ws/desk?token={token}"))
                .await
                .expect("desk websocket opens");
        DeskWs { ws }
    }

    /// The next message of `kind`, with the wall-clock ms it arrived; others are skipped.
    pub async fn next(&mut self, kind: &str, limit: Duration) -> (Value, u64) {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no '{kind}' message within {limit:?}"));
            let at = unix_ms();
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("desk sends JSON");
                    if v["type"] == "offer" {
                        // As the page does once the pop is on screen.
                        let shown = serde_json::json!({"type": "shown", "call_id": v["call_id"]});
                        let _ = self.ws.send(Message::Text(shown.to_string())).await;
                    }
                    if v["type"] == kind {
                        return (v, at);
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("desk socket ended waiting for '{kind}': {other:?}"),
            }
        }
    }
}

/// Wall-clock ms at which SIPp (`-trace_msg`) logged each INVITE it received, from the
/// `*_messages.log` files of `scen` in `dir`.
pub fn invites_received(dir: &Path, scen: &str) -> Vec<u64> {
    let stem = scen.trim_end_matches(".xml");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !(name.starts_with(stem) && name.ends_with("_messages.log")) {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(ts) = l.strip_prefix("----------------------------------------------- ")
            else {
                continue;
            };
            let received = lines
                .get(i + 1)
                .is_some_and(|n| n.contains("message received"));
            let invite = lines
                .iter()
                .skip(i + 2)
                .find(|x| !x.trim().is_empty())
                .is_some_and(|x| x.starts_with("INVITE "));
            if received && invite {
                if let Some(ms) = parse_sipp_time(ts.trim()) {
                    out.push(ms);
                }
            }
        }
    }
    out
}

/// `2026-11-23\t22:50:01.123456` (local time; the tests run in UTC) → unix ms.
fn parse_sipp_time(s: &str) -> Option<u64> {
    let s = s.replace('\t', " ");
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.trim().split_once('.').unwrap_or((time.trim(), "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let us: i64 = format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()?;
    let days = days_from_civil(y, m, day);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    let offset = local_offset_s();
    Some(((secs - offset) * 1000 + us / 1000) as u64)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The machine's UTC offset from `date +%z` (SIPp logs local time).
fn local_offset_s() -> i64 {
    let out = std::process::Command::new("date").arg("+%z").output();
    let z = out
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if z.len() != 5 {
        return 0;
    }
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let h: i64 = z[1..3].parse().unwrap_or(0);
    let m: i64 = z[3..5].parse().unwrap_or(0);
    sign * (h * 3600 + m * 60)
}
