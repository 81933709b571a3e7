//! The desk API over real HTTP and WebSockets: roles on every endpoint, bad input, log-in
//! limits, pops before the phone rings, transfers that carry notes, state that survives a
//! reconnect.

mod common;

use common::desk::{invites_received, phone, server, DeskWs};
use common::http::{get, login, post, request};
use common::{caller, caller_from, TestServer, PASSWORD};
use serde_json::json;
use std::time::Duration;

const DEMO_PLAN: &str = include_str!("../dialplans/default.toml");

#[tokio::test]
async fn every_endpoint_enforces_its_roles() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    let mut tokens = Vec::new();
    for id in ["1001", "sup", "mkt", "admin"] {
        tokens.push(login(http, id, PASSWORD).await);
    }
    // (method, path, body, expected status for agent, supervisor, marketer, admin)
    let cases: Vec<(&str, &str, Option<serde_json::Value>, [u16; 4])> = vec![
        ("GET", "/api/me", None, [200, 200, 200, 200]),
        (
            "POST",
            "/api/me/state",
            Some(json!({"state": "pause", "reason": "break"})),
            [200, 200, 403, 200],
        ),
        ("GET", "/api/agents", None, [403, 200, 403, 200]),
        ("DELETE", "/api/agents/nobody", None, [403, 403, 403, 404]),
        (
            "PATCH",
            "/api/agents/nobody",
            Some(json!({"skills": "sales:3"})),
            [403, 404, 403, 404],
        ),
        (
            "POST",
            "/api/agents/1002/state",
            Some(json!({"state": "logout"})),
            [403, 200, 403, 200],
        ),
        (
            "POST",
            "/api/calls/999/transfer",
            Some(json!({"queue": "sales"})),
            [404, 404, 403, 404],
        ),
        ("GET", "/api/interactions/x-1", None, [403, 404, 403, 404]),
        (
            "POST",
            "/api/interactions/x-1/disposition",
            Some(json!({"disposition": "resolved"})),
            [403, 200, 403, 200],
        ),
        ("GET", "/api/wallboard", None, [403, 200, 403, 200]),
        ("GET", "/api/status", None, [403, 200, 403, 200]),
        ("GET", "/api/reports/campaigns", None, [403, 200, 200, 200]),
        ("GET", "/metrics", None, [403, 200, 403, 200]),
    ];
    for (method, path, body, want) in &cases {
        for (i, tok) in tokens.iter().enumerate() {
            let b = body.as_ref().map(|v| v.to_string());
            let r = request(
                http,
                method,
                path,
                Some(tok),
                b.as_deref().map(|b| ("application/json", b.as_bytes())),
            )
            .await;
            assert_eq!(
                r.status, want[i],
                "{method} {path} as role #{i}: {}",
                r.body
            );
            if r.status >= 400 {
                assert!(
                    r.json()["error"].as_str().is_some_and(|m| !m.is_empty()),
                    "{method} {path}: error without a message"
                );
            }
            // Nobody gets anywhere without a session.
            let anon = request(
                http,
                method,
                path,
                None,
                b.as_deref().map(|b| ("application/json", b.as_bytes())),
            )
            .await;
            assert_eq!(anon.status, 401, "{method} {path} without a token");
        }
    }
    // Only an admin adds agents, and the new agent can log in at once.
    let new = json!({"id": "1009", "name": "Nia", "password": "pw-1009", "skills": "sales:4"});
    for (i, tok) in tokens.iter().enumerate().take(3) {
        let r = post(http, "/api/agents", Some(tok), &new).await;
        assert_eq!(r.status, 403, "role #{i} may not add agents");
    }
    let r = post(http, "/api/agents", Some(&tokens[3]), &new).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        post(http, "/api/agents", Some(&tokens[3]), &new)
            .await
            .status,
        409,
        "duplicate id"
    );
    login(http, "1009", "pw-1009").await;
    // A supervisor changes Nia's skills and gives her own wrap-up; the ACD routes on it.
    let patch = |body: serde_json::Value| {
        let b = body.to_string();
        let tok = tokens[1].clone();
        async move {
            request(
                http,
                "PATCH",
                "/api/agents/1009",
                Some(&tok),
                Some(("application/json", b.as_bytes())),
            )
            .await
        }
    };
    let r = patch(json!({"skills": "support:6", "wrapup_s": 12})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let listed = get(http, "/api/agents", Some(&tokens[1])).await.json();
    let nia = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "1009")
        .unwrap()
        .clone();
    assert_eq!(nia["skills"], json!([["support", 6]]));
    assert_eq!(nia["wrapup_s"], 12);
    srv.wait_for(
        "the ACD sees Nia's new skill",
        Duration::from_secs(5),
        |s| {
            s.agents
                .iter()
                .any(|a| a.id == "1009" && a.skills == ["support"])
        },
    )
    .await;
    assert_eq!(patch(json!({"wrapup_s": null})).await.status, 204);
    let listed = get(http, "/api/agents", Some(&tokens[1])).await.json();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == "1009" && a["wrapup_s"].is_null()));
    assert_eq!(patch(json!({})).await.status, 400, "nothing to change");
    assert_eq!(patch(json!({"skills": "support:99"})).await.status, 400);
    // The desk socket: agents yes, marketers no.
    let ws = |t: &str| format!("ws://{http}/ws/desk?token={t}");
    assert!(tokio_tungstenite::connect_async(ws(&tokens[0]))
        .await
        .is_ok());
    let refused = tokio_tungstenite::connect_async(ws(&tokens[2])).await;
    assert!(
        format!("{refused:?}").contains("403"),
        "marketer refused: {refused:?}"
    );
    let wb = format!("ws://{http}/ws/wallboard?token={}", tokens[0]);
    assert!(
        format!("{:?}", tokio_tungstenite::connect_async(wb).await).contains("403"),
        "agent kept off the wallboard socket"
    );
    // Logged out sessions are gone.
    assert_eq!(
        post(http, "/api/logout", Some(&tokens[1]), &json!({}))
            .await
            .status,
        204
    );
    assert_eq!(get(http, "/api/me", Some(&tokens[1])).await.status, 401);
}

#[tokio::test]
async fn bad_input_gets_a_precise_4xx() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    let tok = login(http, "1001", PASSWORD).await;
    let r = get(http, "/api/me", Some("not-a-token")).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains("log in again"));
    let r = request(
        http,
        "POST",
        "/api/me/state",
        Some(&tok),
        Some(("application/json", b"{\"state\": ")),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("JSON"));
    let r = request(
        http,
        "POST",
        "/api/me/state",
        Some(&tok),
        Some(("text/plain", b"ready")),
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = post(
        http,
        "/api/me/state",
        Some(&tok),
        &json!({"state": "dancing"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("dancing"));
    let r = post(
        http,
        "/api/me/state",
        Some(&tok),
        &json!({"state": "pause", "reason": "  "}),
    )
    .await;
    assert_eq!(r.status, 400, "a pause needs a reason: {}", r.body);
    let r = post(
        http,
        "/api/me/state",
        Some(&tok),
        &json!({"state": "end_wrapup"}),
    )
    .await;
    assert_eq!(r.status, 409, "not in wrap-up: {}", r.body);
    let big = json!({"disposition": "x", "note": "n".repeat(20_000)});
    let r = post(http, "/api/interactions/x/disposition", Some(&tok), &big).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let r = post(
        http,
        "/api/interactions/x/disposition",
        Some(&tok),
        &json!({"disposition": "sale", "tags": ["ok", "not ok!"]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["error"].as_str().unwrap().contains("not ok!"));
    let r = post(
        http,
        "/api/calls/1/transfer",
        Some(&tok),
        &json!({"queue": "sales", "agent": "1003"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = get(http, "/api/nothing-here", Some(&tok)).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].is_string());
}

#[tokio::test]
async fn failed_logins_are_limited_per_account() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    for _ in 0..5 {
        let r = post(
            http,
            "/api/login",
            None,
            &json!({"id": "1002", "password": "guess"}),
        )
        .await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["error"], "wrong id or password");
    }
    let r = post(
        http,
        "/api/login",
        None,
        &json!({"id": "1002", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        r.status, 429,
        "from the guessing address even the right password waits: {}",
        r.body
    );
    assert!(r.headers.to_ascii_lowercase().contains("retry-after:"));
    // The address may try other accounts (the agent's own desk elsewhere is only slowed, not
    // locked: tested in desk::auth), but spraying many is capped at 4 x login_failures.
    for i in 0..15 {
        let r = post(
            http,
            "/api/login",
            None,
            &json!({"id": format!("nobody{i}"), "password": "x"}),
        )
        .await;
        assert_eq!(
            r.status, 401,
            "attempt {i}: same answer as a wrong password"
        );
    }
    let r = post(
        http,
        "/api/login",
        None,
        &json!({"id": "nobody-else", "password": "x"}),
    )
    .await;
    assert_eq!(
        r.status, 429,
        "spraying accounts from one address is limited"
    );
}

#[tokio::test]
async fn the_pop_reaches_the_desk_before_the_phone_rings() {
    let srv = server(Some(DEMO_PLAN)).await;
    let http = srv.running.http_addr;
    let _phone = phone(&srv, "1001", "agent_answer.xml", &["-m", "1", "-trace_msg"]).await;
    let tok = login(http, "1001", PASSWORD).await;
    let mut desk = DeskWs::open(http, &tok).await;
    let r = post(
        http,
        "/api/me/state",
        Some(&tok),
        &json!({"state": "ready"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    desk.next("state", Duration::from_secs(2)).await;
    // +15551230001 got the spring campaign SMS in the demo data.
    let c = caller_from(&srv, "caller.xml", "+15551230001", "200", 1500, 1);
    let (pop, pop_at) = desk.next("offer", Duration::from_secs(10)).await;
    assert_eq!(pop["campaign"]["name"], "spring-ac-offer", "{pop:#}");
    assert_eq!(pop["route"]["rule"], "spring-campaign");
    assert!(pop["route"]["reason"]
        .as_str()
        .unwrap()
        .contains("SMS campaign 'spring-ac-offer'"));
    assert_eq!(pop["ring_timeout_s"], 15);
    desk.next("connected", Duration::from_secs(10)).await;
    let invites = invites_received(srv.dir.path(), "agent_answer.xml");
    assert_eq!(invites.len(), 1, "SIPp logged the INVITE");
    assert!(
        pop_at <= invites[0],
        "pop at {pop_at} ms, INVITE at the phone at {} ms",
        invites[0]
    );
    desk.next("ended", Duration::from_secs(10)).await;
    c.success(Duration::from_secs(20)).await;
    let id = pop["interaction"].as_str().unwrap().to_string();
    let r = post(
        http,
        &format!("/api/interactions/{id}/disposition"),
        Some(&tok),
        &json!({"disposition": "sale", "note": "ordered the AC", "tags": ["vip"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let row = wait_row(&srv, &id, |r| r.outcome.is_some()).await;
    assert_eq!(row.disposition.as_deref(), Some("sale"));
    assert_eq!(row.note.as_deref(), Some("ordered the AC"));
    assert_eq!(row.tags, vec!["vip".to_string()]);
    assert_eq!(row.outcome.as_deref(), Some("answered"));
    assert_eq!(row.agent_id.as_deref(), Some("1001"));
    assert_eq!(row.campaign.as_deref(), Some("spring-ac-offer"));
    assert_eq!(row.rule.as_deref(), Some("spring-campaign"));
    // Another agent may not touch it.
    let other = login(http, "1002", PASSWORD).await;
    let r = get(http, &format!("/api/interactions/{id}"), Some(&other)).await;
    assert_eq!(r.status, 403);
    let metrics = get(http, "/metrics", Some(&login(http, "sup", PASSWORD).await)).await;
    assert!(
        metrics.body.contains("acd_pop_latency_seconds_count 1"),
        "{}",
        metrics.body
    );
}

async fn wait_row(
    srv: &TestServer,
    id: &str,
    cond: impl Fn(&acd::context::InteractionRow) -> bool,
) -> acd::context::InteractionRow {
    for _ in 0..100 {
        if let Ok(Some(r)) = srv.running.store.interaction(id).await {
            if cond(&r) {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("interaction {id} never complete");
}

#[tokio::test]
async fn a_blind_transfer_carries_the_notes_into_the_next_pop() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    let _p1 = phone(&srv, "1001", "agent_answer.xml", &["-m", "1"]).await;
    let _p3 = phone(&srv, "1003", "agent_answer.xml", &["-m", "1"]).await;
    let t1 = login(http, "1001", PASSWORD).await;
    let t3 = login(http, "1003", PASSWORD).await;
    let mut d1 = DeskWs::open(http, &t1).await;
    let mut d3 = DeskWs::open(http, &t3).await;
    post(http, "/api/me/state", Some(&t1), &json!({"state": "ready"})).await;
    let c = caller(&srv, "caller.xml", "100", 6000, 1);
    let (pop, _) = d1.next("offer", Duration::from_secs(10)).await;
    assert_eq!(pop["transfers"], 0);
    d1.next("connected", Duration::from_secs(10)).await;
    // 1003 is not ready yet: a transfer to them waits until they are.
    let call = pop["call_id"].as_u64().unwrap();
    let r = post(
        http,
        &format!("/api/calls/{call}/transfer"),
        Some(&t3),
        &json!({"queue": "sales"}),
    )
    .await;
    assert_eq!(r.status, 403, "only the agent on the call transfers it");
    let r = post(
        http,
        &format!("/api/calls/{call}/transfer"),
        Some(&t1),
        &json!({"agent": "1003", "note": "wants a refund"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["transfers"], 1);
    let (ended, _) = d1.next("ended", Duration::from_secs(5)).await;
    assert_eq!(ended["transferred_to"], "agent:1003");
    post(http, "/api/me/state", Some(&t3), &json!({"state": "ready"})).await;
    let (pop3, _) = d3.next("offer", Duration::from_secs(10)).await;
    assert_eq!(pop3["call_id"], call);
    assert_eq!(pop3["transfers"], 1);
    assert_eq!(pop3["notes"], json!(["1001: wants a refund"]));
    assert_eq!(pop3["interaction"], pop["interaction"], "one history row");
    d3.next("connected", Duration::from_secs(10)).await;
    d3.next("ended", Duration::from_secs(15)).await;
    c.success(Duration::from_secs(20)).await;
    let id = pop["interaction"].as_str().unwrap();
    let row = wait_row(&srv, id, |r| r.outcome.is_some()).await;
    assert_eq!(row.transfers, 1);
    assert_eq!(row.agent_id.as_deref(), Some("1003"));
}

#[tokio::test]
async fn desk_state_and_the_call_card_survive_a_reconnect() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    let _p = phone(&srv, "1002", "agent_answer.xml", &["-m", "1"]).await;
    let tok = login(http, "1002", PASSWORD).await;
    let r = post(
        http,
        "/api/me/state",
        Some(&tok),
        &json!({"state": "pause", "reason": "training"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let me = get(http, "/api/me", Some(&tok)).await.json();
    assert_eq!(me["state"], "paused");
    assert_eq!(me["reason"], "training");
    post(
        http,
        "/api/me/state",
        Some(&tok),
        &json!({"state": "ready"}),
    )
    .await;
    let c = caller(&srv, "caller.xml", "200", 4000, 1);
    {
        let mut d = DeskWs::open(http, &tok).await;
        d.next("connected", Duration::from_secs(10)).await;
    } // the socket drops mid-call (a reload)
    let mut d = DeskWs::open(http, &tok).await;
    let (resume, _) = d.next("resume", Duration::from_secs(2)).await;
    assert_eq!(resume["card"]["phase"], "connected");
    assert_eq!(resume["card"]["pop"]["caller"], "+15551234567");
    let me = get(http, "/api/me", Some(&tok)).await.json();
    assert_eq!(me["state"], "busy");
    d.next("ended", Duration::from_secs(10)).await;
    c.success(Duration::from_secs(20)).await;
    // A supervisor can send an agent who walked away to a pause.
    let sup = login(http, "sup", PASSWORD).await;
    let r = post(
        http,
        "/api/agents/1002/state",
        Some(&sup),
        &json!({"state": "pause", "reason": "left desk"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut st = d.next("state", Duration::from_secs(2)).await.0;
    while st["state"] != "paused" {
        st = d.next("state", Duration::from_secs(2)).await.0;
    }
    assert_eq!(st["reason"], "left desk");
    // The wallboard's figures come from the history (refreshed every few seconds).
    let mut support = serde_json::Value::Null;
    for _ in 0..60 {
        let board = get(http, "/api/wallboard", Some(&sup)).await.json();
        support = board["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == "support")
            .unwrap()
            .clone();
        if support["today"]["answered"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(support["today"]["answered"], 1, "{support:#}");
    assert_eq!(support["today"]["service_level_pct"], 100.0);
    let _ = TestServer::agent_state;
}

const RING_ALL_PLAN: &str = r#"
[[queue]]
name = "sales"
skill = "sales"
strategy = "ring-all"
ring_timeout_s = 10
[[number]]
dial = "100"
queue = "sales"
"#;

#[tokio::test]
async fn ring_all_withdraws_the_pop_of_the_agent_who_did_not_answer() {
    let srv = server(Some(RING_ALL_PLAN)).await;
    let http = srv.running.http_addr;
    let slow = phone(&srv, "1001", "agent_noanswer.xml", &["-m", "1"]).await;
    let fast = phone(&srv, "1003", "agent_answer.xml", &["-m", "1"]).await;
    let t1 = login(http, "1001", PASSWORD).await;
    let t3 = login(http, "1003", PASSWORD).await;
    let mut d1 = DeskWs::open(http, &t1).await;
    let mut d3 = DeskWs::open(http, &t3).await;
    for t in [&t1, &t3] {
        let r = post(http, "/api/me/state", Some(t), &json!({"state": "ready"})).await;
        assert_eq!(r.status, 200);
    }
    let c = caller(&srv, "caller.xml", "100", 2000, 1);
    let (p1, _) = d1.next("offer", Duration::from_secs(10)).await;
    let (p3, _) = d3.next("offer", Duration::from_secs(10)).await;
    assert_eq!(p1["call_id"], p3["call_id"], "both desks pop the same call");
    d3.next("connected", Duration::from_secs(10)).await;
    let (w, _) = d1.next("withdrawn", Duration::from_secs(5)).await;
    assert_eq!(w["call_id"], p1["call_id"]);
    assert_eq!(w["reason"], "taken by another agent");
    slow.success(Duration::from_secs(10)).await; // its phone got a CANCEL
    d3.next("ended", Duration::from_secs(10)).await;
    c.success(Duration::from_secs(20)).await;
    fast.success(Duration::from_secs(10)).await;
    let s = srv.wait_idle().await;
    assert_eq!(TestServer::agent_state(&s, "1001"), "Idle");
}

#[tokio::test]
async fn tokens_only_in_the_header_and_every_page_forbids_framing_and_foreign_scripts() {
    let srv = server(None).await;
    let http = srv.running.http_addr;
    let token = login(http, "sup", PASSWORD).await;
    assert_eq!(get(http, "/api/status", Some(&token)).await.status, 200);
    // A token in the query of an ordinary request (it would leak into logs and Referer).
    let r = get(http, &format!("/api/status?token={token}"), None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    for page in ["/desk", "/wallboard", "/reports", "/api/status"] {
        let h = get(http, page, None).await.headers.to_ascii_lowercase();
        assert!(h.contains("frame-ancestors 'none'"), "{page}: {h}");
        assert!(h.contains("script-src 'self'"), "{page}: {h}");
        assert!(h.contains("x-content-type-options: nosniff"), "{page}: {h}");
        assert!(h.contains("x-frame-options: deny"), "{page}: {h}");
    }
}

/// A restart (an upgrade) keeps the desk logged in: the same token still works afterwards,
/// and logging out then ends it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_sessions_survive_a_restart() {
    let srv = common::start(None, |_| {}).await;
    let token = login(srv.running.http_addr, "1001", PASSWORD).await;
    // The session reaches the database off the request path.
    let now = acd::context::time::unix_now();
    common::eventually("the session in the database", || async {
        let saved = srv.running.store.load_sessions(now).await.unwrap();
        (!saved.is_empty()).then_some(())
    })
    .await;
    let srv = srv.restart().await;
    let http = srv.running.http_addr;
    let me = get(http, "/api/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["agent"], "1001");
    let out = post(http, "/api/logout", Some(&token), &serde_json::json!({})).await;
    assert!(out.status < 300, "{}", out.body);
    assert_eq!(get(http, "/api/me", Some(&token)).await.status, 401);
}
