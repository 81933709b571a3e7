//! Callback ordering on a fake clock.

use super::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn decisions(a: &mut Acd) -> Vec<Decision> {
    std::iter::from_fn(|| a.poll_decision())
        .filter(|d| {
            !matches!(
                d,
                Decision::AgentChanged { .. } | Decision::DeskChanged { .. }
            )
        })
        .collect()
}

fn offer(call: CallId, agent: &str, ring: u64) -> Decision {
    Decision::Offer {
        call,
        agent: agent.into(),
        queue: "sales".into(),
        ring_timeout: secs(ring),
    }
}

/// One queue (15 s ring, auto-pause after one miss); calls 1 (a callback, 30 s to answer)
/// and 2 waiting in that order; agent "anna" not yet registered.
fn engine(t0: Instant) -> Acd {
    let mut a = Acd::new(vec![QueueConfig {
        autopause_after: 1,
        ..QueueConfig::new("sales", "sales")
    }]);
    a.upsert_agent(t0, "anna", HashMap::from([("sales".to_string(), 5)]));
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0 + secs(1), 2, "sales", 0).unwrap();
    assert!(a.callback(1, secs(30)));
    a
}

#[test]
fn a_callback_keeps_its_place_and_its_offer_waits_for_the_customer_then_the_agent() {
    let t0 = Instant::now();
    let mut a = engine(t0);
    let q = &a.queue_status(t0)[0];
    assert_eq!(
        (q.waiting, q.callbacks),
        (2, 1),
        "supervisors see the callback waiting"
    );
    a.agent_online(t0 + secs(5), "anna");
    // Her turn: the agent is reserved for the customer's ring (30 s) plus her own (15 s).
    assert_eq!(decisions(&mut a), vec![offer(1, "anna", 45)]);
    a.handle_timeout(t0 + secs(25));
    assert!(
        decisions(&mut a).is_empty(),
        "no ring timeout while the customer's phone rings"
    );
    // The customer answers at 25 s: the agent's usual 15 s start now.
    assert_eq!(
        a.callback_answered(t0 + secs(25), 1),
        Some(("anna".into(), "sales".into(), secs(15)))
    );
    assert!(!a.is_callback(1));
    a.handle_timeout(t0 + secs(39));
    assert!(decisions(&mut a).is_empty());
    a.handle_timeout(t0 + secs(40));
    let d = decisions(&mut a);
    assert_eq!(
        d[0],
        Decision::RingTimeout {
            call: 1,
            agent: "anna".into()
        }
    );
}

#[test]
fn an_unanswered_callback_frees_the_agent_without_a_miss_and_waits_out_the_retry() {
    let t0 = Instant::now();
    let mut a = engine(t0);
    a.agent_online(t0 + secs(5), "anna");
    assert_eq!(decisions(&mut a), vec![offer(1, "anna", 45)]);
    // The customer's phone rang out: Anna is not paused (auto-pause is at one miss) and
    // takes the next caller at once; the callback keeps its place, first in line.
    a.callback_unanswered(t0 + secs(35), 1, secs(60));
    assert_eq!(decisions(&mut a), vec![offer(2, "anna", 15)]);
    assert_eq!(a.agent_state("anna"), Some(AgentState::Ringing(2)));
    assert_eq!(a.position(t0 + secs(35), 1).map(|p| p.0), Some(1));
    a.offer_answered(t0 + secs(36), 2);
    // Anna is free before the retry delay ends: the held callback is not offered yet.
    a.agent_free(t0 + secs(50), "anna");
    assert!(decisions(&mut a).is_empty());
    // At 35 + 60 s it is, with the customer's ring time again.
    a.handle_timeout(t0 + secs(95));
    assert_eq!(decisions(&mut a), vec![offer(1, "anna", 45)]);
}

#[test]
fn a_callback_is_not_let_go_at_the_queues_maximum_wait() {
    let t0 = Instant::now();
    let mut a = Acd::new(vec![QueueConfig {
        max_wait: Some(secs(60)),
        ..QueueConfig::new("sales", "sales")
    }]);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0, 2, "sales", 0).unwrap();
    assert!(a.callback(2, secs(30)));
    a.handle_timeout(t0 + secs(60));
    let out = decisions(&mut a);
    assert_eq!(
        out,
        vec![Decision::WaitedOut {
            call: 1,
            queue: "sales".into()
        }],
        "only the caller on hold is let go"
    );
    assert_eq!(a.position(t0 + secs(60), 2).map(|p| p.0), Some(1));
}

#[test]
fn only_waiting_callers_can_ask_for_a_callback() {
    let t0 = Instant::now();
    let mut a = engine(t0);
    assert!(!a.callback(99, secs(30)));
    a.call_gone(t0, 1);
    assert!(!a.is_callback(1));
}
