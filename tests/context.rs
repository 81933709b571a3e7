//! The caller context store against real SQLite and PostgreSQL (ACD_TEST_POSTGRES_URL).

#[path = "common/pg.rs"]
mod pg;

use acd::context::{Campaign, InteractionRecord, Store, TicketRecord};

const NOW: i64 = 1_795_000_000;
const ANNA: &str = "+15551230001";

async fn seed(s: &Store) {
    s.upsert_customer(
        "c1",
        "Anna Smith",
        Some("anna@example.com"),
        &[ANNA.into(), "+15551239999".into()],
        &["vip".into(), "complaint".into()],
    )
    .await
    .unwrap();
    for (name, window, queue) in [
        ("spring-ac-offer", 60, Some("sales")),
        ("winter-promo", 24 * 60, None),
    ] {
        s.upsert_campaign(&Campaign {
            name: name.into(),
            offer: format!("{name} offer"),
            queue: queue.map(str::to_string),
            skills: "sales:3".into(),
            window_minutes: window,
        })
        .await
        .unwrap();
    }
    // Inside the 60-minute window, outside it, and a 24-hour campaign from 2 hours ago.
    assert!(s
        .add_campaign_send("spring-ac-offer", ANNA, NOW - 10 * 60)
        .await
        .unwrap());
    assert!(
        !s.add_campaign_send("spring-ac-offer", ANNA, NOW - 10 * 60)
            .await
            .unwrap(),
        "idempotent"
    );
    s.add_campaign_send("spring-ac-offer", ANNA, NOW - 3 * 3600)
        .await
        .unwrap();
    s.add_campaign_send("winter-promo", ANNA, NOW - 2 * 3600)
        .await
        .unwrap();
    s.add_campaign_send("spring-ac-offer", ANNA, NOW + 60)
        .await
        .unwrap(); // scheduled, not sent yet
    for (id, status, opened) in [
        ("T-1", "open", NOW - 86_400),
        ("T-2", "closed", NOW - 3_600),
        ("T-3", "pending", NOW - 600),
    ] {
        s.upsert_ticket(&TicketRecord {
            id: id.into(),
            phone: None,
            customer_id: Some("c1".into()),
            status: status.into(),
            subject: format!("ticket {id}"),
            skill: Some("support".into()),
            opened_at: opened,
        })
        .await
        .unwrap();
    }
    for (i, agent) in [(1, Some("1002")), (2, None), (3, Some("1001"))] {
        s.record_interaction(&InteractionRecord {
            id: format!("call-{i}"),
            phone: ANNA.into(),
            customer_id: Some("c1".into()),
            started_at: NOW - 86_400 * (4 - i),
            queue: Some("sales".into()),
            agent_id: agent.map(str::to_string),
            outcome: Some(
                if agent.is_some() {
                    "answered"
                } else {
                    "abandoned"
                }
                .into(),
            ),
            tags: vec!["billing".into()],
        })
        .await
        .unwrap();
    }
}

async fn check(s: &Store) {
    seed(s).await;
    let ctx = s.lookup(ANNA, NOW).await.unwrap();
    assert_eq!(
        ctx.customer.as_ref().map(|c| c.name.as_str()),
        Some("Anna Smith")
    );
    let sends: Vec<(&str, i64)> = ctx
        .campaigns
        .iter()
        .map(|c| (c.campaign.as_str(), c.sent_at))
        .collect();
    assert_eq!(
        sends,
        vec![("spring-ac-offer", NOW - 600), ("winter-promo", NOW - 7200)],
        "inside windows, latest first"
    );
    assert_eq!(ctx.campaigns[0].queue.as_deref(), Some("sales"));
    let tickets: Vec<&str> = ctx.tickets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(tickets, vec!["T-3", "T-1"], "open ones, newest first");
    assert_eq!(ctx.tags, vec!["complaint", "vip"]);
    assert_eq!(ctx.history.len(), 3);
    assert_eq!(ctx.history[0].tags, vec!["billing"]);
    assert_eq!(ctx.last_agent, Some(("1001".to_string(), NOW - 86_400)));
    // The customer's other phone finds the same customer; an unknown number finds nothing.
    assert_eq!(
        s.lookup("+15551239999", NOW)
            .await
            .unwrap()
            .customer
            .map(|c| c.id),
        Some("c1".into())
    );
    let nobody = s.lookup("+15550000000", NOW).await.unwrap();
    assert!(nobody.customer.is_none() && nobody.campaigns.is_empty() && nobody.tickets.is_empty());
    // Two hours later every spring send (60-minute window) has expired; winter (24 h) still counts.
    let later = s.lookup(ANNA, NOW + 7200).await.unwrap();
    let names: Vec<&str> = later
        .campaigns
        .iter()
        .map(|c| c.campaign.as_str())
        .collect();
    assert_eq!(names, vec!["winter-promo"]);
}

#[tokio::test]
async fn bulk_sends_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&format!("sqlite://{}/bulk.db", dir.path().display()))
        .await
        .unwrap();
    s.upsert_campaign(&Campaign {
        name: "c".into(),
        offer: String::new(),
        queue: None,
        skills: String::new(),
        window_minutes: 60,
    })
    .await
    .unwrap();
    let rows: Vec<acd::context::SendRow> = (0..1000)
        .map(|i| acd::context::SendRow {
            campaign: "c".into(),
            phone: format!("+1555000{i:04}"),
            sent_at: NOW - i,
        })
        .collect();
    assert_eq!(s.add_campaign_sends(&rows).await.unwrap(), 1000);
    assert_eq!(
        s.add_campaign_sends(&rows[..500]).await.unwrap(),
        0,
        "re-import adds nothing"
    );
    assert_eq!(
        s.lookup("+15550000007", NOW).await.unwrap().campaigns[0].sent_at,
        NOW - 7
    );
}

#[tokio::test]
async fn sqlite_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&format!("sqlite://{}/ctx.db", dir.path().display()))
        .await
        .unwrap();
    check(&s).await;
}

#[tokio::test]
async fn postgres_lookup() {
    let url = pg::url().await;
    let name = format!("acd_ctx_{:x}", rand::random::<u32>());
    Store::create_database(&url, &name)
        .await
        .expect("PostgreSQL reachable");
    let db = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    let s = Store::open(&db).await.unwrap();
    check(&s).await;
    s.close().await;
    Store::drop_database(&url, &name).await.unwrap();
}

/// The interaction history: a call row from the writer, a disposition that may come first,
/// roles for desk log-ins, and calls per campaign — the same on both backends.
async fn history(s: &Store) {
    use acd::context::{CallRecord, Role};
    seed(s).await;
    // The agent files the disposition before the writer has the call's row.
    s.set_disposition("n1-7", "sale", "ordered", &["vip".into(), "ac".into()])
        .await
        .unwrap();
    let rec = CallRecord {
        id: "n1-7".into(),
        phone: ANNA.into(),
        customer_id: Some("c1".into()),
        started_at: NOW,
        dialed: "100".into(),
        queue: Some("service-sales".into()),
        rule: Some("spring-campaign".into()),
        reason: Some("SMS campaign".into()),
        campaign: Some("spring-ac-offer".into()),
        agent_id: Some("1001".into()),
        outcome: Some("answered".into()),
        wait_ms: Some(1200),
        talk_ms: Some(60_000),
        transfers: 1,
        recording: Some("recordings/n1-7.wav".into()),
        ticket: Some("T-3".into()),
    };
    let abandoned = CallRecord {
        id: "n1-8".into(),
        outcome: Some("abandoned".into()),
        agent_id: None,
        ..rec.clone()
    };
    let log: Vec<acd::context::EventRow> = (0..3)
        .map(|seq| acd::context::EventRow {
            interaction: "n1-7".into(),
            seq,
            at_ms: NOW * 1000 + seq as i64,
            kind: ["call_arrived", "connected", "ended"][seq as usize].into(),
            data: "{}".into(),
        })
        .collect();
    let batch = [rec, abandoned];
    let before = s.history_counts().await.unwrap();
    s.write_calls(&batch, &log).await.unwrap();
    let (calls, events) = s.history_counts().await.unwrap();
    // n1-7's row exists already (its disposition came first): one new row, three events.
    assert_eq!((calls - before.0, events - before.1), (1, 3));
    // A batch replayed after an outage (it may have landed before the connection broke)
    // changes nothing.
    s.write_calls(&batch, &log).await.unwrap();
    assert_eq!(
        s.history_counts().await.unwrap(),
        (calls, events),
        "no duplicates"
    );
    let kinds: Vec<String> = s
        .call_events("n1-7")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["call_arrived", "connected", "ended"]);
    let row = s.interaction("n1-7").await.unwrap().unwrap();
    assert_eq!(
        row.disposition.as_deref(),
        Some("sale"),
        "kept by the writer"
    );
    assert_eq!(row.note.as_deref(), Some("ordered"));
    assert_eq!(row.tags, vec!["vip".to_string(), "ac".to_string()]);
    assert_eq!(row.outcome.as_deref(), Some("answered"));
    assert_eq!(row.transfers, 1);
    assert_eq!(row.recording.as_deref(), Some("recordings/n1-7.wav"));
    assert_eq!(row.ticket.as_deref(), Some("T-3"));
    assert_eq!(s.expire_recordings(NOW).await.unwrap(), 0, "not old enough");
    assert_eq!(s.expire_recordings(NOW + 1).await.unwrap(), 2);
    let gone = s.interaction("n1-7").await.unwrap().unwrap();
    assert_eq!(gone.recording, None);
    assert_eq!(row.phone, ANNA);
    assert!(s.interaction("nope").await.unwrap().is_none());
    // The next lookup's history shows the call with its tags.
    let ctx = s.lookup(ANNA, NOW + 60).await.unwrap();
    assert!(ctx
        .history
        .iter()
        .any(|h| h.tags.contains(&"vip".to_string())));
    let report = acd::report::campaigns::report(
        s,
        NOW - 86_400,
        NOW + 86_400,
        acd::context::attribution::Attribution::Latest,
    )
    .await
    .unwrap();
    let spring = report
        .campaigns
        .iter()
        .find(|c| c.campaign == "spring-ac-offer")
        .unwrap();
    assert_eq!(
        (
            spring.calls,
            spring.answered,
            spring.abandoned,
            spring.callers
        ),
        (2, 1, 1, 1),
        "both calls credited to the send 10 minutes before"
    );
    assert_eq!(spring.dispositions.get("sale"), Some(&1));
    assert_eq!(spring.recipients, 1);
    // Under "first", the winter send (2 h before, 24 h window) gets them instead.
    let first = acd::report::campaigns::report(
        s,
        NOW - 86_400,
        NOW + 86_400,
        acd::context::attribution::Attribution::First,
    )
    .await
    .unwrap();
    let winter = first
        .campaigns
        .iter()
        .find(|c| c.campaign == "winter-promo")
        .unwrap();
    assert_eq!(winter.calls, 2);
    s.add_agent("boss", "Boss", "acd", "pw-boss", &[])
        .await
        .unwrap();
    assert!(s.set_role("boss", Role::Supervisor).await.unwrap());
    let login = s.agent_login("boss").await.unwrap().unwrap();
    assert_eq!(login.role, Role::Supervisor);
    assert!(!s.set_role("ghost", Role::Admin).await.unwrap());
}

#[tokio::test]
async fn sqlite_history() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&format!("sqlite://{}/h.db", dir.path().display()))
        .await
        .unwrap();
    history(&s).await;
}

#[tokio::test]
async fn postgres_history() {
    let url = pg::url().await;
    let name = format!("acd_hist_{:x}", rand::random::<u32>());
    Store::create_database(&url, &name)
        .await
        .expect("PostgreSQL reachable");
    let db = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    let s = Store::open(&db).await.unwrap();
    history(&s).await;
    s.close().await;
    Store::drop_database(&url, &name).await.unwrap();
}
