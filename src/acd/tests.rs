//! Engine behaviour with a fake clock.

use super::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn q(name: &str, skill: &str) -> QueueConfig {
    QueueConfig::new(name, skill)
}

fn skills(s: &[&str]) -> HashMap<String, u8> {
    s.iter().map(|k| (k.to_string(), 5)).collect()
}

fn setup(t0: Instant) -> Acd {
    let mut a = Acd::new(vec![q("sales", "sales"), q("support", "support")]);
    a.upsert_agent(t0, "1001", skills(&["sales"]));
    a.upsert_agent(t0, "1002", skills(&["support"]));
    a.upsert_agent(t0, "1003", skills(&["sales", "support"]));
    a
}

fn offered(a: &mut Acd) -> Vec<(CallId, String)> {
    std::iter::from_fn(|| a.poll_decision())
        .filter_map(|d| match d {
            Decision::Offer { call, agent, .. } => Some((call, agent)),
            _ => None,
        })
        .collect()
}

#[test]
fn longest_idle_agent_with_the_skill_gets_the_call() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0 + Duration::from_secs(2), "1001");
    a.agent_online(t0 + Duration::from_secs(1), "1003");
    a.agent_online(t0, "1002");
    a.enqueue(t0 + Duration::from_secs(3), 1, "sales", 0)
        .unwrap();
    assert_eq!(offered(&mut a), vec![(1, "1003".to_string())]);
    a.enqueue(t0 + Duration::from_secs(3), 2, "sales", 0)
        .unwrap();
    assert_eq!(offered(&mut a), vec![(2, "1001".to_string())]);
    // Nobody left with sales: the next caller waits.
    a.enqueue(t0 + Duration::from_secs(3), 3, "sales", 0)
        .unwrap();
    assert!(offered(&mut a).is_empty());
    assert_eq!(a.queue_status(t0)[0].waiting, 1);
}

#[test]
fn waiting_caller_is_offered_when_an_agent_frees_up() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1001");
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0, 2, "sales", 0).unwrap();
    assert_eq!(offered(&mut a), vec![(1, "1001".to_string())]);
    assert_eq!(a.offer_answered(t0, 1).as_deref(), Some("1001"));
    assert_eq!(a.agent_state("1001"), Some(AgentState::Busy(1)));
    a.agent_free(t0 + Duration::from_secs(60), "1001");
    assert_eq!(offered(&mut a), vec![(2, "1001".to_string())]);
}

#[test]
fn ring_timeout_moves_the_call_to_the_next_agent_and_rests_the_first() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1001");
    a.agent_online(t0 + Duration::from_millis(1), "1003");
    a.enqueue(t0, 7, "sales", 0).unwrap();
    assert_eq!(offered(&mut a), vec![(7, "1001".to_string())]);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(15)));
    a.handle_timeout(t0 + Duration::from_millis(14_999));
    assert!(a.poll_decision().is_none());
    let t15 = t0 + Duration::from_secs(15);
    a.handle_timeout(t15);
    assert_eq!(
        a.poll_decision(),
        Some(Decision::RingTimeout {
            call: 7,
            agent: "1001".into()
        })
    );
    assert_eq!(offered(&mut a), vec![(7, "1003".to_string())]);
    assert_eq!(a.agent_state("1001"), Some(AgentState::Resting));
    a.handle_timeout(t15 + Duration::from_secs(5));
    assert_eq!(a.agent_state("1001"), Some(AgentState::Idle));
}

#[test]
fn rejected_offer_goes_back_to_the_head_of_the_queue() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1001");
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0, 2, "sales", 0).unwrap();
    offered(&mut a);
    a.offer_failed(t0, 1);
    a.agent_online(t0, "1003");
    assert_eq!(
        offered(&mut a),
        vec![(1, "1003".to_string())],
        "call 1 keeps its place"
    );
}

#[test]
fn priority_beats_arrival_order() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0, 2, "support", 10).unwrap();
    a.agent_online(t0, "1003");
    assert_eq!(offered(&mut a), vec![(2, "1003".to_string())]);
}

#[test]
fn abandon_while_ringing_frees_the_agent_and_leaves_nothing() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1002");
    a.enqueue(t0, 1, "support", 0).unwrap();
    a.enqueue(t0, 2, "support", 0).unwrap();
    offered(&mut a);
    assert_eq!(a.call_gone(t0, 2), None, "waiting caller simply leaves");
    assert_eq!(a.call_gone(t0, 1).as_deref(), Some("1002"));
    assert_eq!(a.agent_state("1002"), Some(AgentState::Idle));
    assert_eq!(a.calls_in_system(), 0);
    while a.poll_decision().is_some() {}
    a.handle_timeout(t0 + Duration::from_secs(100));
    assert!(a.poll_decision().is_none(), "stale ring timer ignored");
}

#[test]
fn agent_going_offline_while_ringing_requeues() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1001");
    a.enqueue(t0, 1, "sales", 0).unwrap();
    offered(&mut a);
    a.agent_offline(t0, "1001");
    assert_eq!(
        a.poll_decision(),
        Some(Decision::RingTimeout {
            call: 1,
            agent: "1001".into()
        })
    );
    assert_eq!(a.queue_status(t0)[0].waiting, 1);
    assert_eq!(
        a.enqueue(t0, 9, "nope", 0),
        Err(AcdError::UnknownQueue("nope".into()))
    );
}

#[test]
fn dispatch_cost_does_not_depend_on_queue_length() {
    // 10,000 waiting callers, then one agent: exactly the head is offered.
    let t0 = Instant::now();
    let mut a = setup(t0);
    for c in 0..10_000 {
        a.enqueue(t0, c, "sales", 0).unwrap();
    }
    a.agent_online(t0, "1001");
    assert_eq!(offered(&mut a), vec![(0, "1001".to_string())]);
}

#[test]
fn reload_keeps_a_dropped_queue_until_its_callers_are_served() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.enqueue(t0, 1, "support", 0).unwrap();
    a.set_queues(vec![q("sales", "sales"), q("billing", "support")]);
    a.agent_online(t0, "1002");
    assert_eq!(
        offered(&mut a),
        vec![(1, "1002".to_string())],
        "the waiting caller is still served"
    );
    a.offer_answered(t0, 1);
    a.set_queues(vec![q("sales", "sales"), q("billing", "support")]);
    let names: Vec<String> = a.queue_status(t0).into_iter().map(|q| q.name).collect();
    assert_eq!(names, vec!["billing", "sales"], "gone once empty");
}

#[test]
fn preferred_agent_gets_the_call_first_and_others_after_the_fallback() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1001");
    a.agent_online(t0 + Duration::from_secs(1), "1003");
    // 1003 is the caller's usual agent although 1001 has been idle longer.
    a.enqueue_for(t0, 1, "sales", 0, Some(("1003", Duration::from_secs(20))))
        .unwrap();
    assert_eq!(offered(&mut a), vec![(1, "1003".to_string())]);
}

#[test]
fn a_reserved_call_waits_for_its_busy_agent_without_holding_up_others() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1003");
    a.enqueue(t0, 1, "sales", 0).unwrap();
    offered(&mut a);
    a.offer_answered(t0, 1); // 1003 now busy
    a.agent_online(t0, "1001");
    a.enqueue_for(t0, 2, "sales", 0, Some(("1003", Duration::from_secs(20))))
        .unwrap();
    assert!(
        offered(&mut a).is_empty(),
        "kept for 1003, not given to idle 1001"
    );
    a.enqueue(t0, 3, "sales", 0).unwrap();
    assert_eq!(
        offered(&mut a),
        vec![(3, "1001".to_string())],
        "the next caller is not held up"
    );
    // 1003 frees up within the window: gets the caller who asked for them.
    a.agent_free(t0 + Duration::from_secs(10), "1003");
    assert_eq!(offered(&mut a), vec![(2, "1003".to_string())]);
}

#[test]
fn after_the_fallback_anyone_may_take_the_call() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1003");
    a.enqueue(t0, 1, "sales", 0).unwrap();
    offered(&mut a);
    a.offer_answered(t0, 1);
    a.agent_online(t0, "1001");
    a.enqueue_for(t0, 2, "sales", 0, Some(("1003", Duration::from_secs(20))))
        .unwrap();
    a.handle_timeout(t0 + Duration::from_secs(19));
    assert!(offered(&mut a).is_empty());
    a.handle_timeout(t0 + Duration::from_secs(20));
    assert_eq!(offered(&mut a), vec![(2, "1001".to_string())]);
    // An unknown preferred agent is ignored.
    a.enqueue_for(t0, 3, "sales", 0, Some(("9999", Duration::from_secs(20))))
        .unwrap();
    assert_eq!(a.queue_status(t0)[0].waiting, 1);
}

#[test]
fn a_call_needing_a_skill_level_goes_to_an_agent_who_has_it_and_does_not_block_others() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.upsert_agent(t0, "1003", skills(&["sales", "support"])); // levels 5
    a.agent_online(t0, "1001"); // sales only, idle longest
    a.agent_online(t0 + Duration::from_secs(1), "1003");
    a.require(1, vec![("support".into(), 3)]);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    assert_eq!(
        offered(&mut a),
        vec![(1, "1003".to_string())],
        "1001 lacks support"
    );
    // Nobody idle has support at level 9: that caller waits, the next one is served.
    a.require(2, vec![("support".into(), 9)]);
    a.enqueue(t0, 2, "sales", 10).unwrap();
    a.enqueue(t0, 3, "sales", 0).unwrap();
    assert_eq!(offered(&mut a), vec![(3, "1001".to_string())]);
    assert_eq!(a.queue_status(t0)[0].waiting, 1);
    assert_eq!(a.call_gone(t0, 2), None);
    assert_eq!(a.calls_in_system(), 2);
}

fn ring_all(t0: Instant) -> Acd {
    let mut a = Acd::new(vec![QueueConfig {
        strategy: Strategy::RingAll,
        ..q("sales", "sales")
    }]);
    for id in ["1001", "1003"] {
        a.upsert_agent(t0, id, skills(&["sales"]));
        a.agent_online(t0, id);
    }
    a
}

#[test]
fn ring_all_rings_every_free_agent_and_the_first_answer_frees_the_rest() {
    let t0 = Instant::now();
    let mut a = ring_all(t0);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    let mut got = offered(&mut a);
    got.sort();
    assert_eq!(got, vec![(1, "1001".into()), (1, "1003".into())]);
    assert_eq!(a.offer_taken(t0, 1, "1003"), vec!["1001".to_string()]);
    assert_eq!(a.agent_state("1003"), Some(AgentState::Busy(1)));
    assert_eq!(a.agent_state("1001"), Some(AgentState::Idle));
    a.enqueue(t0, 2, "sales", 0).unwrap();
    assert_eq!(offered(&mut a), vec![(2, "1001".into())]);
}

#[test]
fn ring_all_keeps_ringing_the_others_when_one_declines_and_times_out_all_together() {
    let t0 = Instant::now();
    let mut a = ring_all(t0);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    offered(&mut a);
    a.agent_failed(t0, 1, "1001");
    assert_eq!(a.agent_state("1001"), Some(AgentState::Resting));
    assert_eq!(a.agent_state("1003"), Some(AgentState::Ringing(1)));
    assert_eq!(
        a.queue_status(t0)[0].waiting,
        0,
        "still offered, not requeued"
    );
    a.handle_timeout(t0 + Duration::from_secs(15));
    let ds: Vec<Decision> = std::iter::from_fn(|| a.poll_decision()).collect();
    let timeouts: Vec<&str> = ds
        .iter()
        .filter_map(|d| match d {
            Decision::RingTimeout { agent, .. } => Some(agent.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, vec!["1003"]);
    // 1001's rest (5 s) ended first, so the caller goes straight back to 1001.
    assert!(ds
        .iter()
        .any(|d| matches!(d, Decision::Offer { call: 1, agent, .. } if agent == "1001")));
    assert_eq!(a.agent_state("1003"), Some(AgentState::Resting));
}

#[test]
fn a_call_is_one_record_from_its_first_need_to_its_end() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    // Named before it joins a line: its skill needs and a callback's dial time are kept.
    a.require(7, vec![("spanish".into(), 3)]);
    a.expect_callback(8, Duration::from_secs(20));
    assert_eq!(a.calls_in_system(), 2);
    // Needs cleared again: nothing is left of a call that never queued.
    a.require(7, Vec::new());
    assert_eq!(a.calls_in_system(), 1);
    // Clearing the needs of a call the engine never knew creates nothing.
    a.require(9, Vec::new());
    assert_eq!(a.calls_in_system(), 1);
    a.enqueue(t0, 8, "sales", 0).unwrap();
    assert!(a.is_callback(8));
    assert_eq!(a.position(t0, 8).map(|p| p.0), Some(1));
    a.agent_online(t0, "1001");
    assert_eq!(offered(&mut a), vec![(8, "1001".to_string())]);
    assert_eq!(a.position(t0, 8), None, "offered, not waiting");
    assert_eq!(a.enqueued_at(8), Some(t0));
    assert_eq!(a.call_gone(t0, 8).as_deref(), Some("1001"));
    assert_eq!(
        a.calls_in_system(),
        0,
        "every part of the call went with it"
    );
}

#[test]
fn an_answered_call_leaves_no_record_and_its_reservation_no_trace() {
    let t0 = Instant::now();
    let mut a = setup(t0);
    a.agent_online(t0, "1001");
    a.agent_online(t0, "1003");
    // Kept for 1003 for a minute: offered to them at once.
    a.enqueue_for(t0, 1, "sales", 0, Some(("1003", Duration::from_secs(60))))
        .unwrap();
    assert_eq!(offered(&mut a), vec![(1, "1003".to_string())]);
    assert_eq!(a.offer_answered(t0, 1).as_deref(), Some("1003"));
    assert_eq!(a.calls_in_system(), 0);
    // The reservation's timer finds nothing; a later caller goes to the free agent.
    a.handle_timeout(t0 + Duration::from_secs(61));
    a.enqueue(t0 + Duration::from_secs(61), 2, "sales", 0)
        .unwrap();
    assert_eq!(offered(&mut a), vec![(2, "1001".to_string())]);
}

/// Callers put back in any order (a new cluster leader hears from its nodes one by one) are
/// served by the time they first joined, even one who joined before the first one put back.
#[test]
fn resumed_callers_keep_their_order_whatever_order_they_come_back_in() {
    let t0 = Instant::now();
    let t5 = t0 + Duration::from_secs(5);
    let mut a = setup(t0);
    a.enqueue_resumed(t5, 2, "sales", 0, t0 + Duration::from_secs(2))
        .unwrap();
    a.enqueue_resumed(t5, 1, "sales", 0, t0).unwrap();
    a.enqueue_resumed(t5, 3, "sales", 0, t0 + Duration::from_secs(3))
        .unwrap();
    a.agent_online(t5, "1001");
    assert_eq!(offered(&mut a), vec![(1, "1001".to_string())]);
    assert_eq!(a.position(t5, 2).map(|p| p.0), Some(1));
    assert_eq!(a.position(t5, 3).map(|p| p.0), Some(2));
}
