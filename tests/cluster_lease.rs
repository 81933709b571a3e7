//! Partition leases against a real NATS 2.9 (issue 14): one leader at a time, the fencing epoch
//! rising with every new leader, a dead leader's lease passing to a survivor within
//! `lease_ms` plus one poll, a clean stop passing it at once.

mod common;

use acd::cluster::lease::{Lease, LeaseEvent, LeaseReply};
use acd::net::nats::Nats;
use common::nats;
use std::time::{Duration, Instant};

/// One node's view of one partition's lease, driven against NATS.
struct Node {
    nats: Nats,
    lease: Lease,
    /// Stop renewing (as if the process died), without telling anyone.
    dead: bool,
    events: Vec<(Instant, LeaseEvent)>,
}

impl Node {
    async fn new(url: &str, cluster: &str, name: &str) -> Node {
        let cfg = nats::cluster_config(url, cluster, name);
        let nats = Nats::connect(&cfg).await.expect("connects to NATS");
        Node {
            nats,
            lease: Lease::new(Instant::now(), cfg.timing()),
            dead: false,
            events: Vec::new(),
        }
    }

    /// Runs whatever operation is due now.
    async fn step(&mut self) {
        if self.dead {
            return;
        }
        let now = Instant::now();
        if let Some(op) = self.lease.poll_op(now) {
            let reply = self.nats.lease("p1", op).await;
            self.lease.on_reply(Instant::now(), reply);
        }
        while let Some(ev) = self.lease.poll_event() {
            self.events.push((Instant::now(), ev));
        }
    }
}

/// Steps every node until `done` holds or `limit` passes; false on the limit.
async fn run_until(nodes: &mut [Node], limit: Duration, done: impl Fn(&[Node]) -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        for n in nodes.iter_mut() {
            n.step().await;
        }
        if done(nodes) {
            return true;
        }
        let next = nodes
            .iter()
            .filter(|n| !n.dead)
            .filter_map(|n| n.lease.poll_timeout())
            .min()
            .unwrap_or(end)
            .min(end);
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
    false
}

fn leaders(nodes: &[Node]) -> Vec<(usize, u64)> {
    let now = Instant::now();
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.dead)
        .filter_map(|(i, n)| n.lease.epoch(now).map(|e| (i, e)))
        .collect()
}

#[tokio::test]
async fn one_leader_and_a_dead_ones_lease_passes_with_a_higher_epoch() {
    let url = nats::url().await;
    let cluster = nats::cluster_name();
    let mut nodes = vec![
        Node::new(&url, &cluster, "a").await,
        Node::new(&url, &cluster, "b").await,
        Node::new(&url, &cluster, "c").await,
    ];
    assert!(
        run_until(&mut nodes, Duration::from_secs(5), |n| leaders(n).len()
            == 1)
        .await,
        "someone leads"
    );
    // Keep running for three renewals: still exactly one leader, the same one.
    let (first, epoch1) = leaders(&nodes)[0];
    let steady = Instant::now() + Duration::from_millis(1600);
    let stayed = run_until(&mut nodes, Duration::from_secs(2), |n| {
        let l = leaders(n);
        assert_eq!(l, vec![(first, epoch1)], "one leader, unchanged");
        Instant::now() >= steady
    })
    .await;
    assert!(stayed);

    // The leader dies without a word: a survivor leads within lease_ms + a poll (+ slack for
    // this machine), with a higher epoch.
    nodes[first].dead = true;
    let killed = Instant::now();
    assert!(
        run_until(&mut nodes, Duration::from_secs(6), |n| leaders(n).len()
            == 1)
        .await,
        "a survivor takes the lease"
    );
    let (second, epoch2) = leaders(&nodes)[0];
    let took = killed.elapsed();
    assert_ne!(second, first);
    assert!(epoch2 > epoch1, "epoch {epoch2} after {epoch1}");
    assert!(
        took <= Duration::from_millis(2000 + 200 + 1000),
        "took {took:?}"
    );

    // The old leader's late renewal is refused: it cannot come back under its epoch.
    nodes[first].dead = false;
    run_until(&mut nodes, Duration::from_secs(2), |n| {
        n[first]
            .events
            .iter()
            .any(|(_, e)| matches!(e, LeaseEvent::Lost { .. }))
    })
    .await;
    assert_eq!(nodes[first].lease.epoch(Instant::now()), None);
    assert_eq!(leaders(&nodes), vec![(second, epoch2)]);

    // A clean stop hands over at once: well under the 2 s a dead leader costs.
    let now = Instant::now();
    let op = nodes[second].lease.release(now).expect("held");
    let reply = nodes[second].nats.lease("p1", op).await;
    nodes[second].lease.on_reply(Instant::now(), reply);
    let released = Instant::now();
    assert!(
        run_until(&mut nodes, Duration::from_secs(3), |n| leaders(n).len()
            == 1)
        .await,
        "the lease passes on"
    );
    let (third, epoch3) = leaders(&nodes)[0];
    assert_ne!(third, second);
    assert!(epoch3 > epoch2);
    assert!(
        released.elapsed() < Duration::from_millis(1500),
        "{:?}",
        released.elapsed()
    );
    nats::remove_cluster(&url, &cluster).await;
}

#[tokio::test]
async fn a_renewal_with_an_old_revision_is_refused_by_nats() {
    let url = nats::url().await;
    let cluster = nats::cluster_name();
    let a = Node::new(&url, &cluster, "a").await;
    let b = Node::new(&url, &cluster, "b").await;
    use acd::cluster::lease::LeaseOp;
    let LeaseReply::Done(rev) = a.nats.lease("p1", LeaseOp::Create).await else {
        panic!("a free lease is created");
    };
    assert_eq!(b.nats.lease("p1", LeaseOp::Create).await, LeaseReply::Taken);
    let LeaseReply::Done(rev2) = a.nats.lease("p1", LeaseOp::Update { revision: rev }).await else {
        panic!("the holder renews");
    };
    assert!(rev2 > rev);
    assert_eq!(
        b.nats.lease("p1", LeaseOp::Update { revision: rev }).await,
        LeaseReply::Taken,
        "a stale revision is refused"
    );
    nats::remove_cluster(&url, &cluster).await;
}
