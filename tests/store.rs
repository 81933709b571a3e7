//! The store against real databases: SQLite, and PostgreSQL (ACD_TEST_POSTGRES_URL, or the
//! machine's own on 127.0.0.1:5432). Each PostgreSQL run gets a fresh database so runs never see each other's rows.

#[path = "common/pg.rs"]
mod pg;

use acd::context::{parse_skills, Store, StoreError};
use acd::sip::auth::Credentials;

async fn exercise(store: &Store) {
    // Callback grants count once per interaction (a replayed history batch adds nothing), per
    // number and day.
    for (i, n, d) in [
        ("a", "+1555", 7),
        ("a", "+1555", 7),
        ("b", "+1555", 7),
        ("c", "+1666", 7),
        ("d", "+1555", 8),
    ] {
        store.save_callback_grant(i, n, d).await.unwrap();
    }
    assert_eq!(
        store.callback_grants(7).await.unwrap(),
        vec![("+1555".to_string(), 2), ("+1666".to_string(), 1)]
    );
    assert_eq!(store.callback_grants(9).await.unwrap(), vec![]);
    let skills = parse_skills("sales:5,support:2").unwrap();
    store
        .add_agent("1001", "Anna", "acd", "s3cret", &skills)
        .await
        .unwrap();
    store
        .add_agent(
            "1002",
            "Ben",
            "acd",
            "s3cret",
            &parse_skills("support").unwrap(),
        )
        .await
        .unwrap();
    store
        .add_agent("1009", "Old", "other-realm", "s3cret", &[])
        .await
        .unwrap();
    assert!(matches!(
        store.add_agent("1001", "Again", "acd", "s3cret", &[]).await,
        Err(StoreError::AgentExists(id)) if id == "1001"
    ));
    assert!(matches!(
        store.add_agent("bad id", "x", "acd", "s3cret", &[]).await,
        Err(StoreError::Invalid(_))
    ));

    let list = store.list_agents().await.unwrap();
    assert_eq!(
        list.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["1001", "1002", "1009"]
    );
    assert_eq!(
        list[0].skills,
        vec![("sales".to_string(), 5), ("support".to_string(), 2)]
    );
    assert_eq!(list[1].skills, vec![("support".to_string(), 5)]);

    let dir = store.load_directory("acd").await.unwrap();
    assert_eq!(
        dir.len(),
        2,
        "the agent hashed for another realm cannot log in and is left out"
    );
    assert_eq!(
        dir[0].credentials,
        Credentials::from_password("1001", "acd", "s3cret")
    );
    assert_eq!(dir[0].skills.get("support"), Some(&2));
    assert_eq!(dir[0].wrapup, None, "no own wrap-up: the queue's applies");

    // An agent's own after-call time reaches the directory (and the ACD) and the list.
    assert!(store.set_wrapup("1002", Some(12)).await.unwrap());
    assert!(!store.set_wrapup("nobody", Some(12)).await.unwrap());
    let dir = store.load_directory("acd").await.unwrap();
    assert_eq!(dir[1].wrapup, Some(std::time::Duration::from_secs(12)));
    let list = store.list_agents().await.unwrap();
    assert_eq!((list[0].wrapup_s, list[1].wrapup_s), (None, Some(12)));

    // Registrations survive a restart; expired ones are not loaded; saving replaces.
    let b = |contact: &str, exp: u64| acd::sip::registrar::SavedBinding {
        contact: contact.into(),
        transport: "UDP".into(),
        peer: "127.0.0.1:5070".parse().unwrap(),
        call_id: "c1".into(),
        cseq: 7,
        expires_at: exp,
        // Through two edge proxies (RFC 3327): kept in order.
        path: vec![
            "<sip:10.77.0.10;lr>".into(),
            "<sip:192.0.2.1:5060;lr;received=sip:10.0.0.9>".into(),
        ],
    };
    store
        .save_bindings(
            "1001",
            &[
                b("sip:1001@127.0.0.1:5070", 2_000),
                b("sip:1001@10.0.0.9", 900),
            ],
        )
        .await
        .unwrap();
    store
        .save_bindings("1002", &[b("sip:1002@127.0.0.1:5072", 2_000)])
        .await
        .unwrap();
    let live = store.load_bindings(1_000).await.unwrap();
    assert_eq!(
        live.len(),
        2,
        "the binding that expired at 900 is not restored"
    );
    assert_eq!(
        live[0],
        ("1001".to_string(), b("sip:1001@127.0.0.1:5070", 2_000))
    );
    store.save_bindings("1002", &[]).await.unwrap();
    assert_eq!(store.load_bindings(1_000).await.unwrap().len(), 1);

    assert!(store.remove_agent("1001").await.unwrap());
    assert!(!store.remove_agent("1001").await.unwrap());
    assert_eq!(store.list_agents().await.unwrap().len(), 2);

    callbacks(store).await;
    desks(store).await;
}

/// Desk choices: one row per agent, replaced by the newest, read back as saved.
async fn desks(store: &Store) {
    use acd::acd::Desk;
    store
        .save_desk("1001", &Desk::Paused("lunch".into()), None)
        .await
        .unwrap();
    store
        .save_desk("1002", &Desk::Ready, Some(1_800_000_000_000))
        .await
        .unwrap();
    store
        .save_desk("1002", &Desk::LoggedOut, None)
        .await
        .unwrap();
    assert_eq!(
        store.load_desks().await.unwrap(),
        vec![
            ("1001".to_string(), Desk::Paused("lunch".into()), None),
            ("1002".to_string(), Desk::LoggedOut, None),
        ]
    );
    store
        .save_desk("1002", &Desk::Ready, Some(1_800_000_000_000))
        .await
        .unwrap();
    let d = store.load_desks().await.unwrap();
    assert_eq!(
        d[1],
        ("1002".to_string(), Desk::Ready, Some(1_800_000_000_000))
    );
}

/// Saved callbacks: kept once however often saved, tries counted, oldest request first, gone
/// when deleted.
async fn callbacks(store: &Store) {
    let cb = |id: &str, requested: i64| acd::call::SavedCallback {
        interaction: id.into(),
        number: "+15551234567".into(),
        target: "sip:+15551234567@192.0.2.1:5060".into(),
        peer: "192.0.2.1:5060".parse().unwrap(),
        queue: "sales".into(),
        priority: -2,
        dialed: "100".into(),
        pcma: true,
        arrived_at_ms: requested - 30_000,
        requested_at_ms: requested,
        attempts: 0,
        granted: None,
    };
    store.save_callback(&cb("b", 2_000_000)).await.unwrap();
    store.save_callback(&cb("a", 1_000_000)).await.unwrap();
    store.save_callback(&cb("a", 1_000_000)).await.unwrap();
    store.set_callback_attempts("b", 2).await.unwrap();
    store.set_callback_queue("b", "backup").await.unwrap();
    let all = store.load_callbacks().await.unwrap();
    assert_eq!(
        all,
        vec![cb("a", 1_000_000), {
            let mut b = cb("b", 2_000_000);
            b.attempts = 2;
            b.queue = "backup".into();
            b
        }]
    );
    store.delete_callback("a").await.unwrap();
    store.delete_callback("a").await.unwrap();
    let left: Vec<String> = store
        .load_callbacks()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.interaction)
        .collect();
    assert_eq!(left, ["b"]);
}

#[tokio::test]
async fn sqlite_store_creates_migrates_and_keeps_agents() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/acd.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    exercise(&store).await;
    store.close().await;
    // Reopening runs no migration twice and sees the same rows.
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.list_agents().await.unwrap().len(), 2);
}

#[tokio::test]
async fn skills_and_urls_are_validated() {
    assert!(parse_skills("sales:11").is_err());
    assert!(parse_skills("sa les:3").is_err());
    assert_eq!(
        parse_skills(" sales:3 , ").unwrap(),
        vec![("sales".to_string(), 3)]
    );
    assert!(matches!(
        Store::open("mysql://x").await,
        Err(StoreError::Url(_))
    ));
}

#[tokio::test]
async fn postgres_store_behaves_like_sqlite() {
    let url = pg::url().await;
    let name = format!("acd_test_{:x}", rand::random::<u32>());
    Store::create_database(&url, &name)
        .await
        .expect("PostgreSQL reachable");
    let db_url = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("URL without database: {url}"),
    };
    let store = Store::open(&db_url).await.unwrap();
    exercise(&store).await;
    store.close().await;
    Store::drop_database(&url, &name).await.unwrap();
}
