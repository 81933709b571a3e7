//! Desk presence with a fake clock: only registered AND ready agents are offered calls.

use super::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn engine(t0: Instant, wrapup: u64) -> Acd {
    let mut a = Acd::new(vec![QueueConfig {
        retry_after: Duration::ZERO,
        wrapup: Duration::from_secs(wrapup),
        ..QueueConfig::new("sales", "sales")
    }]);
    a.set_auto_ready(false);
    a.upsert_agent(t0, "1001", HashMap::from([("sales".to_string(), 5)]));
    a
}

fn offers(a: &mut Acd) -> Vec<CallId> {
    std::iter::from_fn(|| a.poll_decision())
        .filter_map(|d| match d {
            Decision::Offer { call, .. } => Some(call),
            _ => None,
        })
        .collect()
}

#[test]
fn a_registered_agent_gets_calls_only_once_ready() {
    let t0 = Instant::now();
    let mut a = engine(t0, 0);
    a.agent_online(t0, "1001");
    assert_eq!(a.agent_state("1001"), Some(AgentState::LoggedOut));
    a.enqueue(t0, 1, "sales", 0).unwrap();
    assert!(offers(&mut a).is_empty(), "logged-out agent is not offered");
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    assert_eq!(offers(&mut a), vec![1]);
}

#[test]
fn ready_without_a_registered_phone_is_offered_nothing() {
    let t0 = Instant::now();
    let mut a = engine(t0, 0);
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    a.enqueue(t0, 1, "sales", 0).unwrap();
    assert!(offers(&mut a).is_empty());
    assert_eq!(a.agent_state("1001"), Some(AgentState::Offline));
    a.agent_online(t0, "1001");
    assert_eq!(
        offers(&mut a),
        vec![1],
        "ready choice kept until the phone registers"
    );
}

#[test]
fn a_pause_keeps_calls_away_and_shows_its_reason() {
    let t0 = Instant::now();
    let mut a = engine(t0, 0);
    a.agent_online(t0, "1001");
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    a.desk(
        t0,
        "1001",
        DeskCommand::Pause {
            reason: "lunch".into(),
        },
    )
    .unwrap();
    a.enqueue(t0, 1, "sales", 0).unwrap();
    assert!(offers(&mut a).is_empty());
    let st = a.agent_status(t0 + Duration::from_secs(7));
    assert_eq!(st[0].state, AgentState::Paused);
    assert_eq!(st[0].reason.as_deref(), Some("lunch"));
    assert_eq!(st[0].in_state_s, 7);
    assert_eq!(
        a.desk(t0, "1001", DeskCommand::Pause { reason: " ".into() }),
        Err(PresenceError::NoReason)
    );
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    assert_eq!(offers(&mut a), vec![1]);
}

#[test]
fn wrap_up_holds_the_next_call_until_its_time_or_the_agent_ends_it() {
    let t0 = Instant::now();
    let mut a = engine(t0, 30);
    a.agent_online(t0, "1001");
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    a.enqueue(t0, 1, "sales", 0).unwrap();
    assert_eq!(offers(&mut a), vec![1]);
    a.offer_answered(t0, 1);
    a.enqueue(t0, 2, "sales", 0).unwrap();
    a.agent_free(t0, "1001");
    assert_eq!(a.agent_state("1001"), Some(AgentState::WrapUp));
    assert!(offers(&mut a).is_empty());
    a.handle_timeout(t0 + Duration::from_secs(29));
    assert!(offers(&mut a).is_empty(), "still wrapping up");
    a.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(offers(&mut a), vec![2], "wrap-up over: next caller");

    // Ended early from the desk.
    a.offer_answered(t0, 2);
    a.enqueue(t0, 3, "sales", 0).unwrap();
    let t1 = t0 + Duration::from_secs(60);
    a.agent_free(t1, "1001");
    assert_eq!(
        a.desk(t1, "1001", DeskCommand::EndWrapup),
        Ok(()),
        "wrap-up ended by the agent"
    );
    assert_eq!(offers(&mut a), vec![3]);
    assert_eq!(
        a.desk(t1, "1001", DeskCommand::EndWrapup),
        Err(PresenceError::NotInWrapUp("1001".into()))
    );
}

#[test]
fn a_pause_asked_during_a_call_starts_when_the_call_ends() {
    let t0 = Instant::now();
    let mut a = engine(t0, 0);
    a.agent_online(t0, "1001");
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    a.enqueue(t0, 1, "sales", 0).unwrap();
    offers(&mut a);
    a.offer_answered(t0, 1);
    a.desk(
        t0,
        "1001",
        DeskCommand::Pause {
            reason: "break".into(),
        },
    )
    .unwrap();
    assert_eq!(a.agent_state("1001"), Some(AgentState::Busy(1)));
    a.enqueue(t0, 2, "sales", 0).unwrap();
    a.agent_free(t0, "1001");
    assert_eq!(a.agent_state("1001"), Some(AgentState::Paused));
    assert!(offers(&mut a).is_empty());
}

#[test]
fn every_state_change_is_reported_once() {
    let t0 = Instant::now();
    let mut a = engine(t0, 0);
    a.agent_online(t0, "1001");
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    let states: Vec<AgentState> = std::iter::from_fn(|| a.poll_decision())
        .filter_map(|d| match d {
            Decision::AgentChanged { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    assert_eq!(states, vec![AgentState::LoggedOut, AgentState::Idle]);
}
