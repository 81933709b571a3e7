//! The agent desk page in real headless Chromium: log in, click Ready, a SIPp call from the
//! campaign number pops its card (campaign and route reason) before the SIPp phone sees the
//! INVITE, the agent sets a disposition, and the interaction row holds it.

mod common;

use common::cdp::Browser;
use common::desk::{invites_received, phone, server};
use common::{caller_from, PASSWORD};
use std::path::Path;
use std::time::Duration;

const DEMO_PLAN: &str = include_str!("../dialplans/default.toml");

#[tokio::test]
async fn an_agent_sees_the_pop_before_the_phone_rings_and_files_a_disposition() {
    let srv = server(Some(DEMO_PLAN)).await;
    let http = srv.running.http_addr;
    let _phone = phone(&srv, "1001", "agent_answer.xml", &["-m", "1", "-trace_msg"]).await;
    let mut b = Browser::start().await;
    let desk = format!("http://{http}/desk");
    b.log_in_to_desk(&desk, "1001", PASSWORD, Duration::from_secs(5))
        .await;
    assert_eq!(b.text("#state").await, "Logged out");
    b.click("#ready").await;
    b.wait(
        "document.getElementById('state').textContent === 'Ready'",
        Duration::from_secs(5),
    )
    .await;
    b.wait(
        "document.getElementById('conn').textContent.includes('live')",
        Duration::from_secs(5),
    )
    .await;

    let caller = caller_from(&srv, "caller.xml", "+15551230001", "200", 4000, 1);
    b.wait(
        "document.getElementById('pop').dataset.phase === 'connected'",
        Duration::from_secs(10),
    )
    .await;
    let campaign = b.text("#pop-campaign").await;
    assert!(campaign.contains("spring-ac-offer"), "{campaign}");
    let route = b.text("#pop-route").await;
    assert!(route.contains("SMS campaign 'spring-ac-offer'"), "{route}");
    assert!(route.contains("service-sales"), "{route}");
    let shown: u64 = b
        .eval("Number(document.getElementById('pop').dataset.receivedMs)")
        .await
        .as_u64()
        .expect("pop timestamp");
    let invites = invites_received(srv.dir.path(), "agent_answer.xml");
    assert_eq!(invites.len(), 1);
    assert!(
        shown <= invites[0],
        "pop card at {shown} ms, INVITE at the phone at {} ms",
        invites[0]
    );
    b.wait(
        "document.getElementById('state').textContent === 'On a call'",
        Duration::from_secs(5),
    )
    .await;

    b.select("#disposition", "sale").await;
    b.type_into("#note", "ordered the spring AC offer").await;
    b.type_into("#tags", "vip, ac").await;
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/desk-pop.png");
    b.screenshot(&shot).await;
    if std::env::var_os("ACD_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/desk-pop.png");
        std::fs::copy(&shot, docs).unwrap();
    }
    b.click("#save-dispo").await;
    b.wait(
        "document.getElementById('dispo-status').textContent.includes('saved')",
        Duration::from_secs(5),
    )
    .await;
    caller.success(Duration::from_secs(20)).await;
    b.wait(
        "document.getElementById('pop').dataset.phase === 'ended'",
        Duration::from_secs(10),
    )
    .await;
    let id = b
        .eval("document.getElementById('pop').dataset.interaction")
        .await
        .as_str()
        .unwrap()
        .to_string();
    let mut row = None;
    for _ in 0..100 {
        row = srv.running.store.interaction(&id).await.unwrap();
        if row.as_ref().is_some_and(|r| r.outcome.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = row.expect("interaction row");
    assert_eq!(row.disposition.as_deref(), Some("sale"));
    assert_eq!(row.note.as_deref(), Some("ordered the spring AC offer"));
    assert_eq!(row.tags, vec!["ac".to_string(), "vip".to_string()]);
    assert_eq!(row.campaign.as_deref(), Some("spring-ac-offer"));
    assert_eq!(row.outcome.as_deref(), Some("answered"));

    // A reload keeps the session and shows the same card.
    b.goto(&format!("http://{http}/desk")).await;
    b.wait(
        "document.getElementById('pop').dataset.phase === 'ended'",
        Duration::from_secs(5),
    )
    .await;
    assert!(b.text("#pop-caller").await.contains("+15551230001"));
}

#[tokio::test]
async fn the_wallboard_shows_queues_and_agents_live() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    let _phone = phone(&srv, "1002", "agent_answer.xml", &["-m", "1"]).await;
    let mut b = Browser::start().await;
    b.goto(&format!("http://{http}/wallboard")).await;
    b.type_into("#login-id", "sup").await;
    b.type_into("#login-pw", PASSWORD).await;
    b.click("#login-btn").await;
    b.wait(
        "document.querySelector('[data-queue=support]')",
        Duration::from_secs(5),
    )
    .await;
    b.wait(
        "[...document.querySelectorAll('#agents tr')].some(r => r.textContent.includes('1002') && r.textContent.includes('logged out'))",
        Duration::from_secs(5),
    )
    .await;
    let tok = common::http::login(http, "1002", PASSWORD).await;
    common::http::post(
        http,
        "/api/me/state",
        Some(&tok),
        &serde_json::json!({"state": "ready"}),
    )
    .await;
    b.wait(
        "[...document.querySelectorAll('#agents tr')].some(r => r.textContent.includes('1002') && r.textContent.includes('ready'))",
        Duration::from_secs(5),
    )
    .await;
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots/wallboard.png");
    b.screenshot(&shot).await;
    if std::env::var_os("ACD_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(
            &shot,
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/wallboard.png"),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn the_marketer_page_shows_campaigns_and_the_chart() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    let mut b = Browser::start().await;
    b.goto(&format!("http://{http}/reports")).await;
    b.type_into("#login-id", "mkt").await;
    b.type_into("#login-pw", PASSWORD).await;
    b.click("#login-btn").await;
    // The demo's campaign, with its recipients; the chart is an image drawn from our SVG.
    b.wait(
        "document.querySelector('#rows tr[data-campaign=\"spring-ac-offer\"]')",
        Duration::from_secs(5),
    )
    .await;
    let row = b.text("#rows tr[data-campaign=\"spring-ac-offer\"]").await;
    assert!(row.contains("Air-conditioner"), "{row}");
    b.wait(
        "(() => { const i = document.querySelector('#chart img'); return i && i.complete && i.naturalWidth > 0; })()",
        Duration::from_secs(5),
    )
    .await;
    // An agent is sent back to the log-in.
    b.eval("localStorage.clear()").await;
    b.goto(&format!("http://{http}/reports")).await;
    b.type_into("#login-id", "1001").await;
    b.type_into("#login-pw", PASSWORD).await;
    b.click("#login-btn").await;
    b.wait(
        "document.getElementById('login-err').textContent.includes('marketers')",
        Duration::from_secs(5),
    )
    .await;
}
