//! `acd import` through the binary: campaign sends, customers and tickets from CSV, with errors
//! naming line and column, dry runs, idempotent re-imports, and a file streamed in batches.

use acd::context::Store;
use std::io::Write;
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
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const NOW: i64 = 1_795_428_000; // 2026-11-23T10:00:00Z

#[tokio::test]
async fn campaign_sends_import_with_errors_dry_run_and_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/imp.db", dir.path().display());
    let csv = dir.path().join("sends.csv");
    std::fs::write(
        &csv,
        "campaign,phone,sent_at,offer,queue,window_minutes\n\
         spring-ac-offer,+1 (555) 123-0001,2026-11-23T09:50:00Z,AC service -20%,sales,60\n\
         spring-ac-offer,5551230002,2026-11-23 12:45:00+03:00,,,\n\
         spring-ac-offer,555-123-0003,23/11/2026,,,\n\
         \"spring-ac-offer\",\"555 123 0004\",2026-11-23T09:00:00Z,,,\n\
         spring-ac-offer,not-a-phone,2026-11-23T09:00:00Z,,,\n",
    )
    .unwrap();
    let path = csv.to_str().unwrap();
    let dry = acd(&["--db", &db, "import", "campaigns", path, "--dry-run"]);
    assert_eq!(dry.status.code(), Some(2));
    let (out, err) = text(&dry);
    assert!(
        out.contains("5 rows checked (dry run, nothing written), 0 new or updated, 2 rejected"),
        "{out}"
    );
    assert!(
        err.contains("sends.csv:4: column sent_at: '23/11/2026' is not an ISO-8601 time"),
        "{err}"
    );
    assert!(
        err.contains("sends.csv:6: column phone: 'not-a-phone' is not a phone number"),
        "{err}"
    );
    let s = Store::open(&db).await.unwrap();
    assert!(
        s.lookup("+15551230001", NOW)
            .await
            .unwrap()
            .campaigns
            .is_empty(),
        "dry run wrote nothing"
    );
    s.close().await;

    let real = acd(&["--db", &db, "import", "campaigns", path]);
    assert!(
        text(&real)
            .0
            .contains("5 rows imported, 3 new or updated, 2 rejected"),
        "{:?}",
        text(&real)
    );
    let again = acd(&["--db", &db, "import", "campaigns", path]);
    assert!(
        text(&again).0.contains("0 new or updated"),
        "re-import is idempotent: {:?}",
        text(&again)
    );

    let s = Store::open(&db).await.unwrap();
    let ctx = s.lookup("+15551230001", NOW).await.unwrap();
    assert_eq!(ctx.campaigns.len(), 1);
    assert_eq!(ctx.campaigns[0].offer, "AC service -20%");
    assert_eq!(ctx.campaigns[0].window_minutes, 60);
    assert_eq!(ctx.campaigns[0].sent_at, NOW - 600);
    assert_eq!(
        s.lookup("+15551230002", NOW).await.unwrap().campaigns[0].sent_at,
        NOW - 900,
        "+03:00 offset applied"
    );
}

#[tokio::test]
async fn customers_and_tickets_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/imp.db", dir.path().display());
    let cust = dir.path().join("customers.csv");
    std::fs::write(&cust, "id,name,email,phones,tags\nc1,\"Smith, Anna\",anna@example.com,+15551230001;555-123-0099,VIP;complaint\n").unwrap();
    let tick = dir.path().join("tickets.csv");
    std::fs::write(&tick, "id,status,subject,skill,customer_id,opened_at\nT-9,Open,\"AC leaks\nwater\",support,c1,2026-11-20T08:00:00Z\n").unwrap();
    assert!(
        acd(&["--db", &db, "import", "customers", cust.to_str().unwrap()])
            .status
            .success()
    );
    let o = acd(&["--db", &db, "import", "tickets", tick.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let s = Store::open(&db).await.unwrap();
    let ctx = s.lookup("+15551230099", NOW).await.unwrap();
    assert_eq!(ctx.customer.map(|c| c.name), Some("Smith, Anna".into()));
    assert_eq!(ctx.tags, vec!["complaint", "vip"]);
    assert_eq!(
        ctx.tickets[0].subject, "AC leaks\nwater",
        "quoted newline kept"
    );
    assert_eq!(ctx.tickets[0].status, "open");
    let missing = dir.path().join("bad.csv");
    std::fs::write(&missing, "campaign,number\nx,1\n").unwrap();
    let o = acd(&[
        "--db",
        &db,
        "import",
        "campaigns",
        missing.to_str().unwrap(),
    ]);
    assert!(
        text(&o).1.contains("bad.csv:1: missing column 'phone'"),
        "{:?}",
        text(&o)
    );
}

#[tokio::test]
async fn a_large_file_is_streamed_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/big.db", dir.path().display());
    let csv = dir.path().join("big.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(f, "campaign,phone,sent_at").unwrap();
    for i in 0..60_000 {
        writeln!(f, "bulk,+1555{:07},2026-11-23T09:{:02}:00Z", i, i % 60).unwrap();
    }
    drop(f);
    let o = acd(&["--db", &db, "import", "campaigns", csv.to_str().unwrap()]);
    assert!(
        text(&o)
            .0
            .contains("60000 rows imported, 60000 new or updated, 0 rejected"),
        "{:?}",
        text(&o)
    );
    let s = Store::open(&db).await.unwrap();
    assert_eq!(
        s.lookup("+15550059999", NOW).await.unwrap().campaigns.len(),
        1
    );
}

#[test]
fn route_dry_run_explains_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/route.db", dir.path().display());
    let sends = dir.path().join("sends.csv");
    std::fs::write(&sends, "campaign,phone,sent_at,window_minutes\nspring-ac-offer,+15551230001,2026-11-23T09:54:00Z,60\n").unwrap();
    assert!(
        acd(&["--db", &db, "import", "campaigns", sends.to_str().unwrap()])
            .status
            .success()
    );
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[[queue]]\nname = \"sales\"\nskill = \"sales\"\n[[queue]]\nname = \"service-sales\"\nskill = \"service\"\n\
         [[number]]\ndial = \"100\"\nqueue = \"sales\"\n\
         [[rule]]\nname = \"spring\"\nwhen = { campaign = \"spring-ac-offer\" }\n\
         then = { queue = \"service-sales\", priority = 10, reason = \"SMS campaign '{campaign}' sent {minutes} min ago\" }\n",
    )
    .unwrap();
    let p = plan.to_str().unwrap();
    let args = [
        "--db",
        &db,
        "route",
        "--from",
        "(555) 123-0001",
        "--to",
        "100",
        "--at",
        "2026-11-23T10:00:00Z",
        "--dialplan",
        p,
    ];
    let o = acd(&[&args[..], &["--json"]].concat());
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["queue"], "service-sales");
    assert_eq!(v["skip_ivr"], true);
    assert_eq!(v["priority"], 10);
    assert_eq!(v["skills"], serde_json::json!(["service"]));
    assert_eq!(v["rule"], "spring");
    assert_eq!(v["reason"], "SMS campaign 'spring-ac-offer' sent 6 min ago");
    assert_eq!(v["trace"][0]["matched"], true);
    assert_eq!(v["caller"], "+15551230001");
    let human = text(&acd(&args)).0;
    assert!(
        human.contains("→ queue service-sales (skills service), priority 10, skips the menu"),
        "{human}"
    );
    // Two hours later the window has closed: the number's queue, and the trace says why.
    let later = [
        "--db",
        &db,
        "route",
        "--from",
        "+15551230001",
        "--to",
        "100",
        "--at",
        "2026-11-23T12:00:00Z",
        "--dialplan",
        p,
    ];
    let human = text(&acd(&later)).0;
    assert!(
        human.contains("→ queue sales") && human.contains("none inside its window"),
        "{human}"
    );
    let o = acd(&[
        "--db",
        &db,
        "route",
        "--from",
        "+15551230001",
        "--to",
        "999",
        "--dialplan",
        p,
    ]);
    assert!(
        text(&o).1.contains("number '999' is not in the dialplan"),
        "{:?}",
        text(&o)
    );
}
