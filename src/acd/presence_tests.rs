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

fn kept(a: &mut Acd) -> Vec<(Desk, Option<Instant>)> {
    std::iter::from_fn(|| a.poll_decision())
        .filter_map(|d| match d {
            Decision::DeskChanged {
                desk, wrap_until, ..
            } => Some((desk, wrap_until)),
            _ => None,
        })
        .collect()
}

#[test]
fn desk_choices_and_wrap_up_are_reported_for_the_next_start() {
    let t0 = Instant::now();
    let mut a = engine(t0, 30);
    a.agent_online(t0, "1001");
    a.desk(t0, "1001", DeskCommand::Ready).unwrap();
    assert_eq!(kept(&mut a), vec![(Desk::Ready, None)]);
    a.enqueue(t0, 1, "sales", 0).unwrap();
    a.offer_answered(t0, 1);
    let t1 = t0 + Duration::from_secs(5);
    a.agent_free(t1, "1001");
    let wrap = t1 + Duration::from_secs(30);
    assert_eq!(kept(&mut a), vec![(Desk::Ready, Some(wrap))]);
    a.desk(t1, "1001", DeskCommand::EndWrapup).unwrap();
    assert_eq!(kept(&mut a), vec![(Desk::Ready, None)], "ended early");
    let lunch = DeskCommand::Pause {
        reason: "lunch".into(),
    };
    a.desk(t1, "1001", lunch).unwrap();
    assert_eq!(kept(&mut a), vec![(Desk::Paused("lunch".into()), None)]);
}

#[test]
fn a_restart_keeps_a_pause_and_the_rest_of_a_wrap_up() {
    // The next process: the agent's phone is registered again, the desk is read back.
    let t0 = Instant::now();
    let mut a = engine(t0, 0);
    a.agent_online(t0, "1001");
    a.restore_desk(t0, "1001", Desk::Paused("lunch".into()), None);
    assert_eq!(a.agent_state("1001"), Some(AgentState::Paused));
    assert_eq!(a.agent_status(t0)[0].reason.as_deref(), Some("lunch"));
    a.enqueue(t0, 1, "sales", 0).unwrap();
    assert!(offers(&mut a).is_empty(), "still on a pause");
    // Ready but 10 s of wrap-up left: the caller waits those 10 s, not the queue's 0.
    let wrap = t0 + Duration::from_secs(10);
    a.restore_desk(t0, "1001", Desk::Ready, Some(wrap));
    assert_eq!(a.agent_state("1001"), Some(AgentState::WrapUp));
    a.handle_timeout(t0 + Duration::from_secs(9));
    assert!(offers(&mut a).is_empty());
    a.handle_timeout(wrap);
    assert_eq!(offers(&mut a), vec![1]);
    // A wrap-up that ended while acd was down is simply over.
    let mut b = engine(t0, 0);
    b.agent_online(t0, "1001");
    b.restore_desk(wrap, "1001", Desk::Ready, Some(t0));
    assert_eq!(b.agent_state("1001"), Some(AgentState::Idle));
    // Logged out stays logged out, though the phone registered.
    b.restore_desk(wrap, "1001", Desk::LoggedOut, None);
    assert_eq!(b.agent_state("1001"), Some(AgentState::LoggedOut));
}
