//! What agents chose at the desk outlives the process: a paused agent is still paused (with
//! their reason) and offered nothing, an agent in wrap-up stays in it for the rest of its
//! time, and their desk sessions still work, so nobody logs in again.

use super::*;

/// The simple plan, with two minutes of after-call work for support agents.
fn wrapup_plan() -> String {
    SIMPLE_PLAN.replace("skill = \"support\"", "skill = \"support\"\nwrapup_s = 120")
}

pub async fn desk_state_is_kept(db: String, dir: &Path, how: &str) {
    let shutdown = if how == "term" { "resume" } else { "end" };
    let node = Node::with_plan(dir, db, shutdown, &wrapup_plan());
    let first = node.start(true, 1).await;
    let token = http::login(first.http, "sup", PASSWORD).await;
    let anna = http::login(first.http, "1001", PASSWORD).await;
    let sales = phone_at(
        node.sip,
        dir,
        "1001",
        "agent_answer.xml",
        &["-m", "1", "-rtp_echo"],
    )
    .await;
    let support = phone_at(
        node.sip,
        dir,
        "1002",
        "agent_hangup.xml",
        &["-m", "1", "-rtp_echo"],
    )
    .await;
    let lunch = serde_json::json!({"state": "pause", "reason": "lunch"});
    let r = http::post(first.http, "/api/me/state", Some(&anna), &lunch).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Ben (1002) takes a support call; it ends and his wrap-up starts.
    let caller = sipp(
        node.sip,
        dir,
        "caller_wait_bye.xml",
        &["-s", "200", "-key", "caller", "+15550000401", "-m", "1"],
    );
    caller.success(Duration::from_secs(20)).await;
    support.success(Duration::from_secs(10)).await;
    first
        .wait(&token, "Ben wraps up", Duration::from_secs(5), |s| {
            agent_state(s, "1002") == "wrap_up" && agent_state(s, "1001") == "paused"
        })
        .await;
    let store = acd::context::Store::open(&node.db).await.unwrap();
    let store = &store;
    eventually("both desks are kept, no call left", || async move {
        let d = store.load_desks().await.ok()?;
        let kept = |id: &str| d.iter().find(|(a, ..)| a == id).cloned();
        let anna = matches!(kept("1001"), Some((_, acd::acd::Desk::Paused(r), _)) if r == "lunch");
        let ben = matches!(kept("1002"), Some((_, acd::acd::Desk::Ready, Some(_))));
        // Ben's call is over and its snapshot deleted: nothing to take over but the desks.
        let calls = store.count_snapshots().await.ok()?;
        (anna && ben && calls == 0).then_some(())
    })
    .await;
    first.stop(how).await;

    let second = node.start(true, 2).await;
    let s = second
        .wait(&token, "the desks are back", Duration::from_secs(5), |s| {
            agent_state(s, "1001") == "paused" && agent_state(s, "1002") == "wrap_up"
        })
        .await;
    let anna_row = s["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "1001"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(anna_row["reason"], "lunch", "{s:#}");
    // A sales caller waits: Anna is still at lunch.
    let caller = sipp(
        node.sip,
        dir,
        "caller.xml",
        &[
            "-s",
            "100",
            "-key",
            "caller",
            "+15550000402",
            "-d",
            "1000",
            "-m",
            "1",
        ],
    );
    second
        .wait(&token, "the caller waits", Duration::from_secs(5), |s| {
            waiting(s) == 1
        })
        .await;
    // Back from lunch with the desk session of the first process: the call is hers.
    let ready = serde_json::json!({"state": "ready"});
    let r = http::post(second.http, "/api/me/state", Some(&anna), &ready).await;
    assert_eq!(r.status, 200, "{}", r.body);
    caller.success(Duration::from_secs(20)).await;
    sales.success(Duration::from_secs(10)).await;
    let s = second.status(&token).await;
    assert_eq!(
        agent_state(&s, "1002"),
        "wrap_up",
        "Ben's two minutes are not over: {s:#}"
    );
}

/// A desk choice made an instant before a SIGTERM is on disk when the process has exited:
/// the stop waits for the agent state writer as it does for the call snapshots. The table is
/// locked while the choice is made and the signal sent, so the write is still pending when
/// the process is asked to stop; it must not exit before the lock is released and the row
/// written.
pub async fn a_last_desk_choice_is_saved_by_the_stop(db: String, dir: &Path) {
    use sqlx::Connection;
    let node = Node::with_plan(dir, db.clone(), "resume", SIMPLE_PLAN);
    let mut first = node.start(true, 1).await;
    let anna = http::login(first.http, "1001", PASSWORD).await;
    let mut lock = sqlx::PgConnection::connect(&db).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE agent_desk IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let pause = serde_json::json!({"state": "pause", "reason": "meeting"});
    let r = http::post(first.http, "/api/me/state", Some(&anna), &pause).await;
    assert_eq!(r.status, 200, "{}", r.body);
    first.signal("TERM");
    // The write cannot land while the lock is held: the process must still be waiting for it.
    let early = tokio::time::timeout(Duration::from_secs(2), first.child.wait()).await;
    assert!(
        early.is_err(),
        "acd exited with an agent's last desk choice unsaved: {early:?}"
    );
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), first.child.wait())
        .await
        .expect("acd stops once the write is done")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let store = acd::context::Store::open(&node.db).await.unwrap();
    let desks = store.load_desks().await.unwrap();
    assert!(
        desks
            .iter()
            .any(|(a, d, _)| a == "1001" && *d == acd::acd::Desk::Paused("meeting".into())),
        "Anna's pause is saved: {desks:?}"
    );
}
