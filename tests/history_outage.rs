//! The interaction history survives a database outage: PostgreSQL becomes unreachable in the
//! middle of a SIPp load (a TCP proxy in front of it cuts every connection and refuses new
//! ones), calls go on, history batches are spooled to disk, and once the database is back the
//! spool is replayed: every call's row and event log is there, none lost, none twice. And a
//! writer stalled for 10 s (its tables locked, so its statements wait instead of failing)
//! under a SIPp load loses no row and no event.

mod common;

use common::{agent, caller, start};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A cuttable TCP proxy to `target`.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let t = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns2.lock().unwrap().push(t.abort_handle());
            }
        });
        Proxy { addr, up, conns }
    }

    /// The database "goes away": live connections are cut, new ones refused.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_is_lost_or_written_twice_across_a_database_outage() {
    let url = common::pg::url().await;
    let name = format!("acd_spool_{:x}", rand::random::<u32>());
    acd::context::Store::create_database(&url, &name)
        .await
        .expect("PostgreSQL reachable");
    let base = url.rsplit_once('/').unwrap().0.to_string();
    let (prefix, hostport) = base.rsplit_once('@').unwrap();
    let target: SocketAddr = hostport
        .parse()
        .expect("host:port in ACD_TEST_POSTGRES_URL");
    let proxy = Proxy::start(target).await;
    let proxied = format!("{prefix}@{}/{name}", proxy.addr);
    let direct = acd::context::Store::open(&format!("{base}/{name}"))
        .await
        .unwrap();
    let srv = start(None, |c| c.database.url = proxied).await;
    let spool = srv.dir.path().join("spool");
    let a1 = agent(&srv, "1001", "agent_answer.xml", 200, false).await;
    let a3 = agent(&srv, "1003", "agent_answer.xml", 200, false).await;

    // 60 calls over ~6 s; the database is away from 1.5 s to 4.5 s.
    let load = caller(&srv, "caller.xml", "100", 300, 60);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.cut();
    let mut spooled = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        spooled = spooled.max(std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0));
    }
    proxy.restore();
    load.success(Duration::from_secs(60)).await;
    drop((a1, a3));
    srv.wait_idle().await;
    assert!(spooled > 0, "the outage made the writer spool");

    // Once the spool is replayed: exactly 60 calls, each with one complete, gap-free event log.
    for _ in 0..200 {
        let empty = std::fs::read_dir(&spool)
            .map(|d| d.count() == 0)
            .unwrap_or(true);
        if empty {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_history_complete(&direct, 60).await;
    let ids = direct.interactions_of("+15551234567").await.unwrap();
    let row = direct.interaction(&ids[0]).await.unwrap().unwrap();
    assert_eq!(row.outcome.as_deref(), Some("answered"));
    direct.close().await;
    srv.running.core.shutdown().await;
    srv.running.store.close().await;
    let _ = acd::context::Store::drop_database(&url, &name).await;
}

/// Every call's row is there once, each with a complete, gap-free event log, and nothing else.
async fn assert_history_complete(direct: &acd::context::Store, calls: i64) {
    let mut counts = (0, 0);
    for _ in 0..300 {
        counts = direct.history_counts().await.unwrap();
        if counts.0 == calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts.0, calls, "every call is in the history exactly once");
    let ids = direct.interactions_of("+15551234567").await.unwrap();
    assert_eq!(ids.len() as i64, calls);
    let mut events = 0;
    for id in &ids {
        let log = direct.call_events(id).await.unwrap();
        assert_eq!(
            log.first().map(|e| e.kind.as_str()),
            Some("call_arrived"),
            "{id}"
        );
        // Its final event, whoever ended it: a caller who hung up before an agent was free
        // (it happens on a loaded machine, 300 ms after the answer) is as complete a record.
        let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
        assert!(
            matches!(kinds.last(), Some(&"ended" | &"abandoned")),
            "{id}: {kinds:?}"
        );
        assert!(
            log.iter().enumerate().all(|(i, e)| e.seq == i as i32),
            "{id}: gap-free"
        );
        events += log.len() as i64;
    }
    assert_eq!(counts.1, events, "no stray or doubled events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_stalled_for_ten_seconds_loses_nothing() {
    use sqlx::Connection;
    let url = common::pg::url().await;
    let name = format!("acd_stall_{:x}", rand::random::<u32>());
    acd::context::Store::create_database(&url, &name)
        .await
        .expect("PostgreSQL reachable");
    let base = url.rsplit_once('/').unwrap().0.to_string();
    let db = format!("{base}/{name}");
    let direct = acd::context::Store::open(&db).await.unwrap();
    let srv = start(None, |c| c.database.url = db.clone()).await;
    let a1 = agent(&srv, "1001", "agent_answer.xml", 300, false).await;
    let a3 = agent(&srv, "1003", "agent_answer.xml", 300, false).await;

    // The history tables locked against writes (reads go on: lookups still answer) for 10 s
    // while 400 calls come in at 40 per second: ~5,000 events, more than the 4,096 the old
    // broadcast channel held before it dropped.
    let mut lock = sqlx::PgConnection::connect(&db).await.unwrap();
    let mut tx = lock.begin().await.unwrap();
    sqlx::query("LOCK TABLE interactions, interaction_events IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let before = direct.history_counts().await.unwrap().0;
    let load = common::sipp(
        srv.sip(),
        srv.dir.path(),
        "caller.xml",
        &[
            "-s",
            "100",
            "-key",
            "caller",
            "+15551234567",
            "-d",
            "300",
            "-m",
            "400",
            "-l",
            "400",
            "-r",
            "40",
        ],
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = direct.history_counts().await.unwrap().0;
    let waiting = srv.status().await;
    tx.commit().await.unwrap();
    assert_eq!(
        before, during,
        "the writer really was stalled: no row got through"
    );
    assert!(
        waiting.status.totals.ended > 300,
        "calls went on meanwhile: {:?}",
        waiting.status.totals
    );
    load.success(Duration::from_secs(60)).await;
    drop((a1, a3));
    srv.wait_idle().await;
    assert_history_complete(&direct, 400).await;
    let s = srv.status().await;
    assert_eq!(s.events_lost, 0, "no event lost in the core either");
    direct.close().await;
    srv.running.core.shutdown().await;
    srv.running.store.close().await;
    let _ = acd::context::Store::drop_database(&url, &name).await;
}
