//! Campaign attribution end to end: a campaign of 1,000 numbers is imported, SIPp calls in from
//! 100 of them (some answered, some abandoned in the queue) and from 20 numbers that got
//! nothing, and the report counts exactly that. The SVG chart renders to PNG.

mod common;

use common::http::{get, login, post};
use common::{sipp, PASSWORD};
use serde_json::json;
use std::time::Duration;

fn recipient(i: usize) -> String {
    format!("+1555700{i:04}")
}

/// A SIPp injection file: one caller number per call, in order.
fn numbers_file(dir: &std::path::Path, name: &str, numbers: &[String]) -> String {
    let p = dir.join(name);
    let mut s = String::from("SEQUENTIAL\n");
    for n in numbers {
        s.push_str(&format!("{n};\n"));
    }
    std::fs::write(&p, s).unwrap();
    p.display().to_string()
}

#[tokio::test]
async fn the_campaign_report_counts_exactly_the_calls_the_campaign_produced() {
    let srv = common::start(None, |_| {}).await;
    let http = srv.running.http_addr;
    let dir = srv.dir.path().to_path_buf();
    // The campaign, through the CSV import marketers use: sent 10 minutes ago, 60-minute window.
    let sent = chrono_like_iso(acd::context::time::unix_now() - 600);
    let mut csv = String::from("campaign,phone,sent_at,offer,window_minutes\n");
    for i in 0..1000 {
        csv.push_str(&format!(
            "autumn,{},{sent},Boiler check -30%,60\n",
            recipient(i)
        ));
    }
    let report = acd::context::import::import(
        &srv.running.store,
        acd::context::import::ImportKind::Campaigns,
        "autumn.csv",
        csv.as_bytes(),
        &acd::context::e164::Country::by_iso("US").unwrap(),
        false,
        |_| {},
    )
    .await
    .expect("import");
    assert_eq!(report.written, 1000, "{report:?}");

    // 30 recipients reach an agent: two phones, two callers at a time.
    let a1 = common::agent(&srv, "1001", "agent_answer.xml", 100, false).await;
    let a3 = common::agent(&srv, "1003", "agent_answer.xml", 100, false).await;
    let answered: Vec<String> = (0..30).map(recipient).collect();
    let inf = numbers_file(&dir, "answered.csv", &answered);
    let calls = sipp(
        srv.sip(),
        &dir,
        "caller_inf.xml",
        &[
            "-s", "100", "-inf", &inf, "-d", "400", "-m", "30", "-l", "2", "-r", "20",
        ],
    );
    calls.success(Duration::from_secs(60)).await;
    // Then nobody is free: 70 more recipients and 20 strangers give up in the queue.
    let admin = login(http, "admin", PASSWORD).await;
    for a in ["1001", "1003"] {
        let r = post(
            http,
            &format!("/api/agents/{a}/state"),
            Some(&admin),
            &json!({"state": "logout"}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mut waiting: Vec<String> = (30..100).map(recipient).collect();
    waiting.extend((0..20).map(|i| format!("+1555800{i:04}")));
    let inf = numbers_file(&dir, "abandoned.csv", &waiting);
    let calls = sipp(
        srv.sip(),
        &dir,
        "caller_inf.xml",
        &[
            "-s", "100", "-inf", &inf, "-d", "500", "-m", "90", "-l", "30", "-r", "30",
        ],
    );
    calls.success(Duration::from_secs(60)).await;
    srv.wait_idle().await;
    drop((a1, a3));

    let mkt = login(http, "mkt", PASSWORD).await;
    let mut r = serde_json::Value::Null;
    for _ in 0..100 {
        r = get(http, "/api/reports/campaigns", Some(&mkt)).await.json();
        if r["campaigns"][0]["calls"] == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = &r["campaigns"][0];
    assert_eq!(c["campaign"], "autumn", "{r:#}");
    assert_eq!(c["recipients"], 1000);
    assert_eq!(c["callers"], 100);
    assert_eq!(c["calls"], 100, "strangers are not credited");
    assert_eq!(c["answered"], 30);
    assert_eq!(c["abandoned"], 70);
    assert_eq!(c["response_pct"], 10.0);
    assert_eq!(
        c["by_hour"][0], 100,
        "all within the first hour after the send"
    );
    assert!(c["avg_talk_s"].as_f64().unwrap() > 0.0);

    let csv = get(http, "/api/reports/campaigns?format=csv", Some(&mkt)).await;
    assert!(
        csv.body
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("autumn,Boiler check -30%,1000,100,10.0,100,30,70"),
        "{}",
        csv.body
    );
    let svg = get(http, "/api/reports/campaigns?format=svg", Some(&mkt)).await;
    assert_eq!(svg.status, 200);
    let svg_path = dir.join("chart.svg");
    std::fs::write(&svg_path, &svg.body).unwrap();
    let png = dir.join("chart.png");
    let out = std::process::Command::new("rsvg-convert")
        .arg("-o")
        .arg(&png)
        .arg(&svg_path)
        .output()
        .expect("rsvg-convert is installed (apt-get install librsvg2-bin)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 2000,
        "a real picture"
    );
    if std::env::var_os("ACD_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(
            &png,
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/campaign-chart.png"),
        )
        .unwrap();
    }
    // The queue figures from the same calls: short abandons (500 ms) are not held against the
    // service level; every answered call was answered within 20 s.
    let sup = login(http, "sup", PASSWORD).await;
    let q = get(http, "/api/reports/queues", Some(&sup)).await.json();
    let sales = &q["queues"]["sales"];
    assert_eq!(sales["calls"], 120, "{q:#}");
    assert_eq!(sales["answered"], 30);
    assert_eq!(sales["abandoned"], 90);
    assert_eq!(sales["abandoned_short"], 90);
    assert_eq!(sales["service_level_pct"], 100.0);
    assert_eq!(sales["abandon_pct"], 0.0);
    let by_agent: u64 = ["1001", "1003"]
        .iter()
        .map(|a| q["agents"][a]["answered"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(by_agent, 30);
    assert_eq!(
        get(http, "/api/reports/queues", Some(&mkt)).await.status,
        403
    );
    let board = get(http, "/api/wallboard", Some(&sup)).await.json();
    let tile = board["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sales")
        .unwrap()
        .clone();
    assert_eq!(
        tile["today"], *sales,
        "the wallboard shows the report's numbers"
    );
    // Agents may not see reports; bad periods are refused with a reason.
    let agent = login(http, "1002", PASSWORD).await;
    assert_eq!(
        get(http, "/api/reports/campaigns", Some(&agent))
            .await
            .status,
        403
    );
    let bad = get(http, "/api/reports/campaigns?since=yesterday", Some(&mkt)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("yesterday"));
}

/// ISO-8601 UTC for a unix time.
fn chrono_like_iso(t: i64) -> String {
    acd::context::time::format_iso8601(t)
}
