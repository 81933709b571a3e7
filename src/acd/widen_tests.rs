//! Widening, cross-queue order and per-agent wrap-up on a fake clock.

use super::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The (call, agent) offers made since the last look.
fn offers(a: &mut Acd) -> Vec<(CallId, String)> {
    std::iter::from_fn(|| a.poll_decision())
        .filter_map(|d| match d {
            Decision::Offer { call, agent, .. } => Some((call, agent)),
            _ => None,
        })
        .collect()
}

fn agent(a: &mut Acd, t: Instant, id: &str, skills: &[(&str, u8)]) {
    let skills: HashMap<String, u8> = skills.iter().map(|(s, l)| (s.to_string(), *l)).collect();
    a.upsert_agent(t, id, skills);
    a.agent_online(t, id);
}

/// "support" wants level 4 at first, level 1 after 30 s, billing agents too after 90 s, and
/// sends the caller to "general" after 180 s.
fn widening() -> Vec<QueueConfig> {
    vec![
        QueueConfig {
            min_level: 4,
            widen: vec![
                Widen {
                    after: secs(30),
                    min_level: Some(1),
                    skills: vec![],
                },
                Widen {
                    after: secs(90),
                    min_level: None,
                    skills: vec![("billing".into(), 1)],
                },
            ],
            max_wait: Some(secs(180)),
            overflow: Some("general".into()),
            ..QueueConfig::new("support", "support")
        },
        QueueConfig::new("general", "general"),
    ]
}

#[test]
fn a_caller_reaches_lower_levels_then_other_skills_then_overflow_as_they_wait() {
    let t0 = Instant::now();
    let mut a = Acd::new(widening());
    agent(&mut a, t0, "junior", &[("support", 2)]);
    agent(&mut a, t0, "biller", &[("billing", 3)]);
    a.enqueue(t0, 1, "support", 0).unwrap();
    assert!(offers(&mut a).is_empty(), "nobody at level 4 yet");

    a.handle_timeout(t0 + secs(29));
    assert!(offers(&mut a).is_empty(), "still only level 4 at 29 s");
    a.handle_timeout(t0 + secs(30));
    assert_eq!(offers(&mut a), vec![(1, "junior".to_string())]);

    // The junior agent's phone drops; until the next step the billing agent may not take it.
    a.agent_offline(t0 + secs(40), "junior");
    a.handle_timeout(t0 + secs(89));
    assert!(offers(&mut a).is_empty());
    a.handle_timeout(t0 + secs(90));
    let o = offers(&mut a);
    assert!(o.contains(&(1, "biller".to_string())), "{o:?}");
}

#[test]
fn an_agent_coming_free_is_offered_a_caller_only_their_widened_skill_reaches() {
    let t0 = Instant::now();
    let mut a = Acd::new(widening());
    a.enqueue(t0, 1, "support", 0).unwrap();
    a.handle_timeout(t0 + secs(90));
    assert!(offers(&mut a).is_empty());
    // A billing agent registering after the 90 s step is offered the caller at once.
    agent(&mut a, t0 + secs(100), "biller", &[("billing", 1)]);
    assert_eq!(offers(&mut a), vec![(1, "biller".to_string())]);

    // A fresh caller is not for billing agents: the freed biller is not offered it.
    a.enqueue(t0 + secs(101), 2, "support", 0).unwrap();
    a.call_gone(t0 + secs(102), 1);
    assert!(offers(&mut a).is_empty());
}

#[test]
fn nobody_taking_the_caller_in_time_sends_them_to_the_overflow_queue() {
    let t0 = Instant::now();
    let mut a = Acd::new(widening());
    a.enqueue(t0, 1, "support", 0).unwrap();
    a.handle_timeout(t0 + secs(180));
    let moved: Vec<_> = std::iter::from_fn(|| a.poll_decision())
        .filter(|d| matches!(d, Decision::Overflow { .. }))
        .collect();
    assert_eq!(moved.len(), 1);
    agent(&mut a, t0 + secs(181), "gen", &[("general", 1)]);
    assert_eq!(offers(&mut a), vec![(1, "gen".to_string())]);
}

fn two_queues(t0: Instant, rule: CrossQueue) -> Acd {
    let mut a = Acd::new(vec![
        QueueConfig::new("sales", "sales"),
        QueueConfig {
            weight: 10,
            ..QueueConfig::new("vip", "vip")
        },
    ]);
    a.set_cross_queue(rule);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0 + secs(20), 2, "vip", 0).unwrap();
    agent(&mut a, t0 + secs(30), "both", &[("sales", 5), ("vip", 5)]);
    a
}

#[test]
fn an_agent_in_two_queues_gets_the_longest_waiting_caller_by_default() {
    let t0 = Instant::now();
    let mut a = two_queues(t0, CrossQueue::LongestWaiting);
    assert_eq!(offers(&mut a), vec![(1, "both".to_string())]);
}

#[test]
fn with_queue_weight_the_heavier_queue_is_served_first() {
    let t0 = Instant::now();
    let mut a = two_queues(t0, CrossQueue::QueueWeight);
    assert_eq!(offers(&mut a), vec![(2, "both".to_string())]);
}

#[test]
fn an_agents_own_wrap_up_wins_over_the_queues() {
    let t0 = Instant::now();
    let mut a = Acd::new(vec![QueueConfig {
        wrapup: secs(60),
        ..QueueConfig::new("sales", "sales")
    }]);
    agent(&mut a, t0, "fast", &[("sales", 5)]);
    agent(&mut a, t0, "slow", &[("sales", 5)]);
    a.set_agent_wrapup("fast", Some(secs(5)));
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0, 2, "sales", 0).unwrap();
    for call in [1, 2] {
        a.offer_answered(t0, call);
    }
    let by = |a: &Acd, id: &str| a.agent_state(id);
    // Both finish; the one with their own 5 s is free at 5 s, the other after the queue's 60 s.
    let t1 = t0 + secs(100);
    a.agent_free(t1, "fast");
    a.agent_free(t1, "slow");
    a.handle_timeout(t1 + secs(5));
    assert_eq!(by(&a, "fast"), Some(AgentState::Idle));
    assert_eq!(by(&a, "slow"), Some(AgentState::WrapUp));
    a.handle_timeout(t1 + secs(60));
    assert_eq!(by(&a, "slow"), Some(AgentState::Idle));
}
