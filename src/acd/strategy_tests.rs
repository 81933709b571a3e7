//! Strategies, auto-pause and overflow on a fake clock.

use super::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn queue(name: &str, strategy: Strategy) -> QueueConfig {
    QueueConfig {
        ring_timeout: Duration::from_secs(10),
        retry_after: Duration::ZERO,
        strategy,
        ..QueueConfig::new(name, "sales")
    }
}

/// Agents 1001..=1004 with sales at levels 2, 5, 3, 5, all registered and idle, 1001 idle longest.
fn engine(t0: Instant, queues: Vec<QueueConfig>) -> Acd {
    let mut a = Acd::new(queues);
    a.set_seed(7);
    for (i, level) in [2u8, 5, 3, 5].into_iter().enumerate() {
        let id = format!("100{}", i + 1);
        let t = t0 + Duration::from_millis(i as u64);
        a.upsert_agent(t, &id, HashMap::from([("sales".to_string(), level)]));
        a.agent_online(t, &id);
    }
    while a.poll_decision().is_some() {}
    a
}

/// Offers one call at a time and answers, ends it: who took calls 1..=n, in order.
fn serve(a: &mut Acd, t0: Instant, n: u64, talk: impl Fn(&str) -> u64) -> Vec<String> {
    let mut who = Vec::new();
    let mut now = t0 + Duration::from_secs(1);
    for call in 1..=n {
        a.enqueue(now, call, "sales", 0).unwrap();
        let agent = std::iter::from_fn(|| a.poll_decision())
            .find_map(|d| match d {
                Decision::Offer { agent, .. } => Some(agent),
                _ => None,
            })
            .expect("offered");
        a.offer_taken(now, call, &agent);
        now += Duration::from_secs(talk(&agent));
        a.agent_free(now, &agent);
        now += Duration::from_millis(1);
        who.push(agent);
    }
    who
}

#[test]
fn round_robin_remembers_where_it_stopped() {
    let t0 = Instant::now();
    let mut a = engine(t0, vec![queue("sales", Strategy::RoundRobin)]);
    assert_eq!(
        serve(&mut a, t0, 6, |_| 10),
        ["1001", "1002", "1003", "1004", "1001", "1002"]
    );
}

#[test]
fn linear_always_starts_at_the_top() {
    let t0 = Instant::now();
    let mut a = engine(t0, vec![queue("sales", Strategy::Linear)]);
    // Highest level first (1002 and 1004 at 5, by id), every time it is free.
    assert_eq!(serve(&mut a, t0, 3, |_| 10), ["1002", "1002", "1002"]);
}

#[test]
fn fewest_calls_and_least_talk_time_balance_differently() {
    let t0 = Instant::now();
    let mut a = engine(t0, vec![queue("sales", Strategy::FewestCalls)]);
    let who = serve(&mut a, t0, 8, |_| 10);
    for id in ["1001", "1002", "1003", "1004"] {
        assert_eq!(who.iter().filter(|w| *w == id).count(), 2, "{who:?}");
    }
    // 1001 talks 100 s per call, the others 1 s: least-talk-time keeps 1001 out after one call.
    let mut a = engine(t0, vec![queue("sales", Strategy::LeastTalkTime)]);
    let who = serve(&mut a, t0, 8, |a| if a == "1001" { 100 } else { 1 });
    assert_eq!(who.iter().filter(|w| *w == "1001").count(), 1, "{who:?}");
}

#[test]
fn random_strategies_spread_calls_and_weights_favour_higher_levels() {
    let t0 = Instant::now();
    let mut a = engine(t0, vec![queue("sales", Strategy::Random)]);
    let who = serve(&mut a, t0, 400, |_| 1);
    for id in ["1001", "1002", "1003", "1004"] {
        let n = who.iter().filter(|w| *w == id).count();
        assert!((60..=140).contains(&n), "{id}: {n} of 400");
    }
    let mut a = engine(t0, vec![queue("sales", Strategy::WeightedRandom)]);
    let who = serve(&mut a, t0, 1500, |_| 1);
    let n = |id: &str| who.iter().filter(|w| *w == id).count() as f64;
    // Levels 2, 5, 3, 5 out of 15.
    assert!(
        (n("1002") / n("1001") - 2.5).abs() < 0.7,
        "{} vs {}",
        n("1002"),
        n("1001")
    );
    assert!(n("1004") > n("1003"));
}

#[test]
fn an_agent_who_lets_calls_ring_out_is_paused_with_a_reason() {
    let t0 = Instant::now();
    let mut q = queue("sales", Strategy::LongestIdle);
    q.autopause_after = 2;
    let mut a = Acd::new(vec![q]);
    a.upsert_agent(t0, "1001", HashMap::from([("sales".to_string(), 5)]));
    a.agent_online(t0, "1001");
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.handle_timeout(t0 + Duration::from_secs(10)); // first miss: offered again at once
    assert_eq!(a.agent_state("1001"), Some(AgentState::Ringing(1)));
    a.handle_timeout(t0 + Duration::from_secs(20)); // second miss in a row
    assert_eq!(a.agent_state("1001"), Some(AgentState::Paused));
    let st = a.agent_status(t0 + Duration::from_secs(20));
    assert_eq!(st[0].reason.as_deref(), Some("missed 2 calls in a row"));
    assert_eq!(
        a.queue_status(t0)[0].waiting,
        1,
        "the caller waits for someone else"
    );
    a.desk(t0 + Duration::from_secs(30), "1001", DeskCommand::Ready)
        .unwrap();
    assert_eq!(a.agent_state("1001"), Some(AgentState::Ringing(1)));
}

#[test]
fn a_caller_who_waits_too_long_overflows_keeping_their_place() {
    let t0 = Instant::now();
    let mut first = queue("sales", Strategy::LongestIdle);
    first.max_wait = Some(Duration::from_secs(60));
    first.overflow = Some("backup".into());
    let mut backup = queue("backup", Strategy::LongestIdle);
    backup.skill = "backup".into();
    let mut a = Acd::new(vec![first, backup]);
    a.upsert_agent(t0, "2001", HashMap::from([("backup".to_string(), 5)]));
    a.agent_online(t0, "2001");
    // 2001 talks to backup caller 9; our caller 1 waits in sales (nobody there); backup caller 8
    // arrives after ours.
    a.enqueue(t0, 9, "backup", 0).unwrap();
    a.offer_taken(t0, 9, "2001");
    a.enqueue(t0 + Duration::from_secs(1), 1, "sales", 0)
        .unwrap();
    a.enqueue(t0 + Duration::from_secs(2), 8, "backup", 0)
        .unwrap();
    while a.poll_decision().is_some() {}
    a.handle_timeout(t0 + Duration::from_secs(60));
    assert!(
        !std::iter::from_fn(|| a.poll_decision()).any(|d| matches!(d, Decision::Overflow { .. }))
    );
    a.handle_timeout(t0 + Duration::from_secs(61));
    let ds: Vec<Decision> = std::iter::from_fn(|| a.poll_decision()).collect();
    assert_eq!(
        ds,
        vec![Decision::Overflow {
            call: 1,
            from: "sales".into(),
            to: "backup".into()
        }]
    );
    let backup = a
        .queue_status(t0)
        .into_iter()
        .find(|q| q.name == "backup")
        .unwrap();
    assert_eq!(backup.waiting, 2);
    // 2001 comes free: our caller, who arrived before 8, goes first.
    a.agent_free(t0 + Duration::from_secs(62), "2001");
    assert!(
        std::iter::from_fn(|| a.poll_decision())
            .any(|d| matches!(d, Decision::Offer { call: 1, .. })),
        "the overflowed caller kept their place"
    );
}

#[test]
fn without_an_overflow_queue_a_caller_at_the_maximum_wait_is_let_go() {
    let t0 = Instant::now();
    let mut q = queue("sales", Strategy::LongestIdle);
    q.max_wait = Some(Duration::from_secs(60));
    let mut a = Acd::new(vec![q]);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0 + Duration::from_secs(5), 2, "sales", 0)
        .unwrap();
    a.handle_timeout(t0 + Duration::from_secs(60));
    let ds: Vec<Decision> = std::iter::from_fn(|| a.poll_decision()).collect();
    assert_eq!(
        ds,
        vec![Decision::WaitedOut {
            call: 1,
            queue: "sales".into()
        }]
    );
    assert_eq!(
        a.queue_status(t0)[0].waiting,
        1,
        "only the second caller is left"
    );
    assert_eq!(
        a.position(t0 + Duration::from_secs(60), 2).map(|p| p.0),
        Some(1)
    );
}

#[test]
fn ageing_lets_a_long_waiting_low_priority_caller_go_first() {
    let t0 = Instant::now();
    for (age, first) in [(None, 2), (Some(Duration::from_secs(60)), 1)] {
        let mut q = queue("sales", Strategy::LongestIdle);
        q.age = age;
        let mut a = Acd::new(vec![q]);
        a.upsert_agent(t0, "1001", HashMap::from([("sales".to_string(), 5)]));
        a.enqueue(t0, 1, "sales", 0).unwrap();
        // 100 s later a caller one priority point higher arrives; then an agent comes free.
        let t1 = t0 + Duration::from_secs(100);
        a.enqueue(t1, 2, "sales", 1).unwrap();
        a.agent_online(t1, "1001");
        let offered = std::iter::from_fn(|| a.poll_decision()).find_map(|d| match d {
            Decision::Offer { call, .. } => Some(call),
            _ => None,
        });
        assert_eq!(offered, Some(first), "ageing {age:?}");
    }
}

#[test]
fn position_and_expected_wait_follow_the_line_and_the_handle_time() {
    let t0 = Instant::now();
    let mut a = Acd::new(vec![queue("sales", Strategy::LongestIdle)]);
    a.upsert_agent(t0, "1001", HashMap::from([("sales".to_string(), 5)]));
    a.agent_online(t0, "1001");
    // One 60 s call teaches the queue its handle time; then the agent takes another.
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.offer_taken(t0, 1, "1001");
    let t1 = t0 + Duration::from_secs(60);
    a.agent_free(t1, "1001");
    a.enqueue(t1, 4, "sales", 0).unwrap();
    a.offer_taken(t1, 4, "1001");
    a.enqueue(t1, 2, "sales", 0).unwrap();
    a.enqueue(t1, 3, "sales", 5).unwrap();
    assert_eq!(a.position(t1, 3), Some((1, 60)), "higher priority: first");
    assert_eq!(a.position(t1, 2), Some((2, 120)));
    assert_eq!(a.position(t1, 4), None, "talking, not waiting");
    a.agent_free(t1 + Duration::from_secs(60), "1001");
    assert_eq!(a.position(t1, 3), None, "now ringing");
    assert_eq!(a.position(t1, 2), Some((1, 60)));
}

#[test]
fn a_full_or_unstaffed_queue_sends_callers_on_or_turns_them_away() {
    let t0 = Instant::now();
    let mut small = queue("sales", Strategy::LongestIdle);
    small.max_len = Some(1);
    small.overflow = Some("backup".into());
    let mut backup = queue("backup", Strategy::LongestIdle);
    backup.skill = "backup".into();
    backup.join_empty = false;
    let mut a = Acd::new(vec![small, backup]);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    // Sales is full and backup has nobody logged in: turned away.
    assert_eq!(
        a.enqueue(t0, 2, "sales", 0),
        Err(AcdError::Full("sales".into()))
    );
    a.upsert_agent(t0, "2001", HashMap::from([("backup".to_string(), 5)]));
    a.agent_online(t0, "2001");
    a.desk(
        t0,
        "2001",
        DeskCommand::Pause {
            reason: "break".into(),
        },
    )
    .unwrap();
    while a.poll_decision().is_some() {}
    // Someone is logged in (even paused): the caller waits in backup.
    a.enqueue(t0, 3, "sales", 0).unwrap();
    assert_eq!(
        a.poll_decision(),
        Some(Decision::Overflow {
            call: 3,
            from: "sales".into(),
            to: "backup".into()
        })
    );
    let backup = a
        .queue_status(t0)
        .into_iter()
        .find(|q| q.name == "backup")
        .unwrap();
    assert_eq!(backup.waiting, 1);
}

#[test]
fn when_the_last_agent_leaves_waiting_callers_move_to_the_overflow_queue() {
    let t0 = Instant::now();
    let mut q = queue("sales", Strategy::LongestIdle);
    q.leave_empty = true;
    q.overflow = Some("backup".into());
    let mut backup = queue("backup", Strategy::LongestIdle);
    backup.skill = "backup".into();
    let mut a = Acd::new(vec![q, backup]);
    a.set_auto_ready(false);
    a.upsert_agent(t0, "1001", HashMap::from([("sales".to_string(), 5)]));
    a.agent_online(t0, "1001"); // registered, logged out
    a.desk(
        t0,
        "1001",
        DeskCommand::Pause {
            reason: "break".into(),
        },
    )
    .unwrap();
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.enqueue(t0, 2, "sales", 0).unwrap();
    while a.poll_decision().is_some() {}
    a.desk(t0, "1001", DeskCommand::Logout).unwrap();
    let moved: Vec<CallId> = std::iter::from_fn(|| a.poll_decision())
        .filter_map(|d| match d {
            Decision::Overflow { call, .. } => Some(call),
            _ => None,
        })
        .collect();
    assert_eq!(moved, vec![1, 2], "in their order");
    let st = a.queue_status(t0);
    assert_eq!(st.iter().find(|q| q.name == "backup").unwrap().waiting, 2);
    assert_eq!(st.iter().find(|q| q.name == "sales").unwrap().waiting, 0);
}
