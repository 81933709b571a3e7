//! Several nodes' matchers wired by an in-memory bus that delivers every message as NATS would
//! (to the partition's leader, to one node, to all), on a fake clock.

use crate::acd::{AgentState, Decision, Desk, DeskCommand, QueueConfig};
use crate::cluster::protocol::{call_prefix, FromLeader, LeaderMsg, Outgoing};
use crate::cluster::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const P: &str = DEFAULT_PARTITION;

struct Bus {
    nodes: Vec<(String, Matcher)>,
    now: Instant,
    /// Messages sent, by kind (for the test's own checks).
    sent: Vec<Outgoing>,
}

fn node_cfg(name: &str) -> ClusterConfig {
    toml::from_str(&format!("node = \"{name}\"\n")).expect("valid")
}

impl Bus {
    fn new(names: &[&str]) -> Bus {
        let now = Instant::now();
        let wall = WallClock {
            at: now,
            unix_ms: 1_800_000_000_000,
        };
        let mut q = QueueConfig::new("sales", "sales");
        q.ring_timeout = Duration::from_secs(15);
        let nodes = names
            .iter()
            .map(|n| {
                let mut m = Matcher::node(node_cfg(n), vec![q.clone()], wall);
                m.set_auto_ready(true);
                (n.to_string(), m)
            })
            .collect();
        Bus {
            nodes,
            now,
            sent: Vec::new(),
        }
    }

    fn m(&mut self, name: &str) -> &mut Matcher {
        &mut self
            .nodes
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("a node of the test")
            .1
    }

    /// Every node knows agent `id` (the directory is everyone's) and sees their phone.
    fn agent(&mut self, id: &str, reachable: bool) {
        let now = self.now;
        for (_, m) in &mut self.nodes {
            m.upsert_agent(now, id, HashMap::from([("sales".to_string(), 5)]));
            if reachable {
                m.agent_online(now, id);
            }
        }
    }

    /// Delivers messages until none is left; a node in `down` neither sends nor hears.
    fn run(&mut self, down: &[&str]) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                if down.contains(&self.nodes[i].0.as_str()) {
                    while self.nodes[i].1.poll_outgoing().is_some() {}
                    continue;
                }
                while let Some(o) = self.nodes[i].1.poll_outgoing() {
                    moved = true;
                    self.sent.push(o.clone());
                    let now = self.now;
                    for (name, m) in &mut self.nodes {
                        if down.contains(&name.as_str()) {
                            continue;
                        }
                        match &o {
                            Outgoing::Leader { partition, msg } => {
                                m.handle_from_node(now, partition, msg.clone())
                            }
                            Outgoing::Node { node, msg } if node == name => {
                                m.handle_from_leader(now, msg.clone())
                            }
                            Outgoing::Node { .. } => {}
                            Outgoing::Nodes(msg) => m.handle_from_leader(now, msg.clone()),
                            Outgoing::Desk(_) | Outgoing::Stray(_) => {}
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The offers node `name` is told to make, draining its other decisions.
    fn offers(&mut self, name: &str) -> Vec<(u64, String)> {
        let mut v = Vec::new();
        while let Some(d) = self.m(name).poll_decision() {
            if let Decided::Acd(Decision::Offer { call, agent, .. }) = d {
                v.push((call, agent));
            }
        }
        v
    }

    fn drain(&mut self, name: &str) -> Vec<Decided> {
        std::iter::from_fn(|| self.m(name).poll_decision()).collect()
    }
}

fn call(node: &str, n: u64) -> u64 {
    call_prefix(node) + n
}

#[test]
fn a_caller_on_one_node_is_offered_by_the_leader_on_another() {
    let mut bus = Bus::new(&["a", "b"]);
    bus.agent("alice", true);
    let now = bus.now;
    bus.m("a").lead(now, P, 5, &[], &[]);
    bus.run(&[]);
    let c = call("b", 1);
    bus.m("b")
        .enqueue_for(now, c, "sales", 0, None)
        .expect("joins");
    assert_eq!(bus.m("b").enqueued_at(c), Some(now));
    bus.run(&[]);
    assert_eq!(bus.offers("b"), vec![(c, "alice".to_string())]);
    assert!(
        bus.offers("a").is_empty(),
        "the leader does not ring for b's caller"
    );
    assert_eq!(
        bus.m("a").agent_state("alice"),
        Some(AgentState::Ringing(c))
    );
    // b's phone answered: the leader's agent is busy with b's call, and free after it.
    bus.m("b").offer_taken(now, c, "alice");
    bus.run(&[]);
    assert_eq!(bus.m("a").agent_state("alice"), Some(AgentState::Busy(c)));
    bus.m("b").agent_free(now, "alice");
    bus.run(&[]);
    assert_eq!(bus.m("a").agent_state("alice"), Some(AgentState::Idle));
    assert_eq!(
        bus.m("b").enqueued_at(c),
        None,
        "b keeps nothing of the call"
    );
}

#[test]
fn a_deposed_leaders_late_offer_is_refused() {
    let mut bus = Bus::new(&["a", "b"]);
    bus.agent("alice", true);
    let now = bus.now;
    bus.m("a").lead(now, P, 5, &[], &[]);
    bus.run(&[]);
    let c = call("b", 1);
    bus.m("b")
        .enqueue_for(now, c, "sales", 0, None)
        .expect("joins");
    // A new leader (epoch 9) spoke to b; then a's old offer arrives.
    bus.m("b").handle_from_leader(
        now,
        FromLeader {
            partition: P.into(),
            epoch: 9,
            msg: LeaderMsg::Reconcile,
        },
    );
    bus.m("b").handle_from_leader(
        now,
        FromLeader {
            partition: P.into(),
            epoch: 5,
            msg: LeaderMsg::Offer {
                call: c,
                agent: "alice".into(),
                queue: "sales".into(),
                ring_ms: 15_000,
            },
        },
    );
    assert!(bus.offers("b").is_empty(), "epoch 5 is below 9");
}

/// The leader dies with callers waiting on three nodes (its own among them): the new leader
/// rebuilds the line from every node's account and serves callers in the order they first
/// joined, whichever node holds them.
#[test]
fn a_new_leader_keeps_every_callers_place() {
    let mut bus = Bus::new(&["a", "b", "c"]);
    bus.agent("alice", false);
    let t0 = bus.now;
    bus.m("a").lead(t0, P, 5, &[], &[]);
    bus.run(&[]);
    let (c1, c2, c3) = (call("c", 1), call("b", 1), call("c", 2));
    bus.m("c")
        .enqueue_for(t0, c1, "sales", 0, None)
        .expect("joins");
    bus.now = t0 + Duration::from_secs(1);
    let t1 = bus.now;
    bus.m("b")
        .enqueue_for(t1, c2, "sales", 0, None)
        .expect("joins");
    bus.now = t0 + Duration::from_secs(2);
    let t2 = bus.now;
    bus.m("c")
        .enqueue_for(t2, c3, "sales", 0, None)
        .expect("joins");
    bus.run(&[]);
    assert_eq!(bus.m("a").calls_in_system(), 3);

    // a is gone; b takes the lease.
    bus.now = t0 + Duration::from_secs(5);
    let t5 = bus.now;
    bus.m("b").lead(t5, P, 9, &[], &[]);
    bus.run(&["a"]);
    assert_eq!(
        bus.m("b").calls_in_system(),
        3,
        "every caller is back in line"
    );
    for (_, m) in &mut bus.nodes {
        m.agent_online(t5, "alice");
    }
    bus.run(&["a"]);
    assert_eq!(
        bus.offers("c"),
        vec![(c1, "alice".to_string())],
        "first come"
    );
    bus.m("c").agent_failed(t5, c1, "alice");
    bus.run(&["a"]);
    assert_eq!(
        bus.m("b").position(t5, c1).map(|p| p.0),
        Some(1),
        "a declined caller is back at the head"
    );
    assert_eq!(bus.m("b").position(t5, c2).map(|p| p.0), Some(2));
    assert_eq!(bus.m("b").position(t5, c3).map(|p| p.0), Some(3));
}

/// A phone ringing when the leader changes is stopped (the new leader knows nothing of that
/// offer), the caller stays in line and is offered again by the new leader.
#[test]
fn a_ringing_offer_is_withdrawn_and_made_again_by_the_new_leader() {
    let mut bus = Bus::new(&["a", "b"]);
    bus.agent("alice", true);
    let now = bus.now;
    bus.m("a").lead(now, P, 5, &[], &[]);
    bus.run(&[]);
    let c = call("b", 1);
    bus.m("b")
        .enqueue_for(now, c, "sales", 0, None)
        .expect("joins");
    bus.run(&[]);
    assert_eq!(bus.offers("b"), vec![(c, "alice".to_string())]);
    bus.m("b")
        .lead(now + Duration::from_secs(3), P, 9, &[], &[]);
    let d = bus.drain("b");
    assert!(
        d.contains(&Decided::Withdraw {
            call: c,
            agent: "alice".into()
        }),
        "{d:?}"
    );
    assert!(
        d.contains(&Decided::Acd(Decision::Offer {
            call: c,
            agent: "alice".into(),
            queue: "sales".into(),
            ring_timeout: Duration::from_secs(15)
        })),
        "offered again: {d:?}"
    );
}

/// An agent's pause, chosen while node a led, holds when node b leads: b heard of it.
#[test]
fn a_pause_survives_the_leader() {
    let mut bus = Bus::new(&["a", "b"]);
    bus.agent("alice", true);
    let now = bus.now;
    bus.m("a").lead(now, P, 5, &[], &[]);
    bus.run(&[]);
    bus.m("a")
        .desk(
            now,
            "alice",
            DeskCommand::Pause {
                reason: "lunch".into(),
            },
        )
        .expect("a leads alice");
    bus.drain("a");
    bus.run(&[]);
    assert!(matches!(
        bus.m("b").desk(now, "alice", DeskCommand::Ready),
        Err(MatchError::Elsewhere { .. })
    ));
    bus.m("b")
        .lead(now + Duration::from_secs(3), P, 9, &[], &[]);
    bus.run(&["a"]);
    assert_eq!(bus.m("b").agent_state("alice"), Some(AgentState::Paused));
    let c = call("b", 1);
    bus.m("b")
        .enqueue_for(now, c, "sales", 0, None)
        .expect("joins");
    assert!(
        bus.offers("b").is_empty(),
        "a paused agent is offered nothing"
    );
    let _ = Desk::Ready;
}

/// One box behaves as the engine alone did: no messages, every decision local.
#[test]
fn one_box_sends_nothing() {
    let now = Instant::now();
    let wall = WallClock {
        at: now,
        unix_ms: 0,
    };
    let mut m = Matcher::single(vec![QueueConfig::new("sales", "sales")], wall);
    m.set_auto_ready(true);
    m.upsert_agent(now, "alice", HashMap::from([("sales".to_string(), 1)]));
    m.agent_online(now, "alice");
    m.enqueue_for(now, 7, "sales", 0, None).expect("joins");
    let offers: Vec<_> = std::iter::from_fn(|| m.poll_decision())
        .filter(|d| matches!(d, Decided::Acd(Decision::Offer { .. })))
        .collect();
    assert_eq!(offers.len(), 1);
    assert!(m.poll_outgoing().is_none());
}

/// A node dies: its waiting callers leave the leader's line at once (the survivor puts them
/// back), and an agent talking on one of its calls stays busy until the survivor claims the
/// call, or until the grace runs out when nobody does.
#[test]
fn a_dead_nodes_callers_leave_the_line_and_its_agents_stay_busy_until_claimed() {
    let mut bus = Bus::new(&["a", "b", "c"]);
    bus.agent("alice", true);
    bus.agent("bob", true);
    let now = bus.now;
    bus.m("a").lead(now, P, 5, &[], &[]);
    bus.run(&[]);
    let (talk, talk2, wait) = (call("b", 1), call("b", 2), call("b", 3));
    bus.m("b")
        .enqueue_for(now, talk, "sales", 0, None)
        .expect("joins");
    bus.m("b")
        .enqueue_for(now, talk2, "sales", 0, None)
        .expect("joins");
    bus.run(&[]);
    let offers = bus.offers("b");
    assert_eq!(offers.len(), 2, "{offers:?}");
    for (c, agent) in &offers {
        bus.m("b").offer_taken(now, *c, agent);
    }
    bus.m("b")
        .enqueue_for(now, wait, "sales", 0, None)
        .expect("joins");
    bus.run(&[]);
    assert_eq!(bus.m("a").calls_in_system(), 1, "one caller waits");

    bus.m("a").node_down(now, "b");
    assert_eq!(bus.m("a").calls_in_system(), 0, "b's caller left the line");
    // c took over b's first call and says so; nobody claims the second.
    let later = now + Duration::from_secs(3);
    let claimed = call("c", 7);
    let (agent1, agent2) = (offers[0].1.clone(), offers[1].1.clone());
    bus.m("c").resume_busy(later, &agent1, claimed, "sales");
    bus.run(&["b"]);
    assert_eq!(
        bus.m("a").agent_state(&agent1),
        Some(AgentState::Busy(claimed))
    );
    assert_eq!(
        bus.m("a").agent_state(&agent2),
        Some(AgentState::Busy(offers[1].0))
    );
    let grace = now + matcher::ORPHAN_GRACE;
    assert!(bus.m("a").poll_timeout().is_some_and(|t| t <= grace));
    bus.m("a").handle_timeout(grace);
    assert_eq!(
        bus.m("a").agent_state(&agent1),
        Some(AgentState::Busy(claimed))
    );
    assert_ne!(
        bus.m("a").agent_state(&agent2),
        Some(AgentState::Busy(offers[1].0)),
        "an unclaimed agent is free again"
    );
}

/// A new leader that learns from the calls bucket that an agent talks on a call somewhere
/// offers them nothing, even before that call's node reports it.
#[test]
fn a_new_leader_offers_nothing_to_an_agent_talking_elsewhere() {
    let mut bus = Bus::new(&["a", "b"]);
    bus.agent("alice", true);
    let now = bus.now;
    bus.m("a").lead(
        now,
        P,
        5,
        &[("alice".to_string(), "sales".to_string())],
        &[],
    );
    let c = call("a", 1);
    bus.m("a")
        .enqueue_for(now, c, "sales", 0, None)
        .expect("joins");
    assert!(bus.offers("a").is_empty(), "alice is on a call");
    bus.m("a").handle_timeout(now + matcher::ORPHAN_GRACE);
    assert_eq!(bus.offers("a"), vec![(c, "alice".to_string())]);
}

/// Messages lost on the way (a caller joining, a caller leaving, an answer) heal at the next
/// re-announce: the leader's line matches what the node holds.
#[test]
fn lost_messages_heal_at_the_next_announce() {
    let mut bus = Bus::new(&["a", "b"]);
    bus.agent("alice", false);
    let now = bus.now;
    bus.m("a").lead(now, P, 5, &[], &[]);
    bus.run(&[]);
    let (kept, left) = (call("b", 1), call("b", 2));
    bus.m("b")
        .enqueue_for(now, kept, "sales", 0, None)
        .expect("joins");
    bus.m("b")
        .enqueue_for(now, left, "sales", 0, None)
        .expect("joins");
    bus.run(&[]);
    assert_eq!(bus.m("a").calls_in_system(), 2);
    // `left` hangs up and a third caller joins, and both messages are lost.
    let lost = call("b", 3);
    bus.m("b").call_gone(now, left);
    bus.m("b")
        .enqueue_for(now, lost, "sales", 0, None)
        .expect("joins");
    while bus.m("b").poll_outgoing().is_some() {}
    assert_eq!(bus.m("a").position(now, left).map(|p| p.0), Some(2));
    assert_eq!(bus.m("a").position(now, lost), None);
    let later = now + crate::cluster::following::ANNOUNCE_EVERY;
    assert!(bus.m("b").poll_timeout().is_some_and(|t| t <= later));
    bus.m("b").handle_timeout(later);
    bus.run(&[]);
    assert_eq!(bus.m("a").position(later, left), None, "the hang-up healed");
    assert_eq!(bus.m("a").position(later, kept).map(|p| p.0), Some(1));
    assert_eq!(
        bus.m("a").position(later, lost).map(|p| p.0),
        Some(2),
        "the join healed"
    );
}

/// Every node shows the whole centre: a leader sends its partition's queues and agents each
/// second; a view older than the stale limit (no leader any more) is not shown.
#[test]
fn every_node_shows_the_queues_and_agents_its_leader_reports() {
    let mut bus = Bus::new(&["a", "b"]);
    bus.agent("alice", true);
    let now = bus.now;
    bus.m("a").lead(now, P, 5, &[], &[]);
    bus.m("a").handle_timeout(now);
    bus.run(&[]);
    let agents = bus.m("b").agent_status(now);
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0].id, "alice");
    assert!(bus
        .m("b")
        .queue_status(now)
        .iter()
        .any(|q| q.name == "sales"));
    assert!(
        bus.m("a")
            .poll_timeout()
            .is_some_and(|t| t <= now + matcher::STATUS_EVERY),
        "the leader sends it again within a second"
    );
    let later = now + matcher::STATUS_STALE;
    assert!(
        bus.m("b").agent_status(later).is_empty(),
        "a stale view is not shown"
    );
}

/// A new leader offers nothing before every live node has told it its callers: the caller who
/// joined first on another node is offered before a later one on the leader's own node.
#[test]
fn a_new_leader_hears_every_node_before_its_first_offer() {
    let mut bus = Bus::new(&["a", "b", "c"]);
    bus.agent("alice", false);
    let t0 = bus.now;
    bus.m("a").lead(t0, P, 5, &[], &[]);
    bus.run(&[]);
    let (early, late) = (call("c", 1), call("b", 1));
    bus.m("c")
        .enqueue_for(t0, early, "sales", 0, None)
        .expect("joins");
    bus.now = t0 + Duration::from_secs(1);
    let t1 = bus.now;
    bus.m("b")
        .enqueue_for(t1, late, "sales", 0, None)
        .expect("joins");
    bus.run(&[]);
    // a dies with alice's phone just back; b takes the lease, c is alive.
    for (_, m) in &mut bus.nodes {
        m.agent_online(t1, "alice");
    }
    bus.now = t0 + Duration::from_secs(4);
    let t4 = bus.now;
    bus.m("b")
        .lead(t4, P, 9, &[], &["b".to_string(), "c".to_string()]);
    assert!(
        bus.offers("b").is_empty(),
        "nothing offered before c's account"
    );
    bus.run(&["a"]);
    assert_eq!(
        bus.offers("c"),
        vec![(early, "alice".to_string())],
        "the first to join, on the other node"
    );
    assert!(bus.offers("b").is_empty());
}

/// A live node that never answers holds the first offers for RECONCILE_WAIT at most.
#[test]
fn a_silent_node_delays_a_new_leaders_offers_only_briefly() {
    let mut bus = Bus::new(&["b", "c"]);
    bus.agent("alice", true);
    let t0 = bus.now;
    let late = call("b", 1);
    bus.m("b").lead(t0, P, 9, &[], &["c".to_string()]);
    bus.m("b")
        .enqueue_for(t0, late, "sales", 0, None)
        .expect("joins");
    bus.run(&["c"]);
    assert!(bus.offers("b").is_empty());
    bus.now = t0 + crate::cluster::matcher::RECONCILE_WAIT;
    let due = bus.now;
    bus.m("b").handle_timeout(due);
    assert_eq!(bus.offers("b"), vec![(late, "alice".to_string())]);
}
