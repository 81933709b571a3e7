//! The desk hub: follows the event stream and pushes each agent's pops and call changes to that
//! agent's open desks (and nobody else's). The phone rings only once a desk says the pop is on
//! screen (`{"type":"shown"}`), or when the core's pop wait runs out, or at once when the agent
//! has no desk open.

use super::metrics::Metrics;
use crate::acd::CallId;
use crate::control::CoreHandle;
use crate::events::Event;
use crate::events::Pop;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc};
use tracing::warn;

/// One message for one desk socket; an offer carries when it was made, for the write latency.
pub struct Push {
    pub text: Arc<str>,
    pub offered_at: Option<Instant>,
}

/// Messages a slow desk may have queued before it is dropped (it reconnects and resumes).
const DESK_QUEUE: usize = 64;
/// Interactions remembered as "handled by" for permission checks on dispositions.
const HANDLED_KEPT: usize = 50_000;

/// The call card an agent's desk shows now, for a reload or a reconnect to resume.
#[derive(Clone, Debug, Serialize)]
pub struct Card {
    /// offer, connected, ended, withdrawn.
    pub phase: &'static str,
    pub pop: Arc<Pop>,
}

#[derive(Default)]
struct State {
    next_conn: u64,
    desks: HashMap<String, Vec<(u64, mpsc::Sender<Push>)>>,
    /// Agents with an open offer for each call (several under ring-all), and when it was made.
    offers: HashMap<CallId, Vec<(String, Arc<Pop>, Instant)>>,
    cards: HashMap<String, Card>,
    handled: HashMap<String, String>,
    handled_order: VecDeque<String>,
}

pub struct Hub {
    state: Mutex<State>,
    core: CoreHandle,
    pub metrics: Metrics,
    /// Today's queue figures, shared by every wallboard, refreshed at most every few seconds.
    today: tokio::sync::Mutex<Option<(Instant, Arc<crate::report::queues::QueueReport>)>>,
}

fn offer_json(pop: &Pop) -> Value {
    let mut v = serde_json::to_value(pop).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), json!("offer"));
        o.insert("sent_ms".into(), json!(unix_ms()));
    }
    v
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    pub fn new(core: CoreHandle) -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(State::default()),
            core,
            metrics: Metrics::default(),
            today: tokio::sync::Mutex::new(None),
        })
    }

    /// Today's queue figures (UTC day so far), recomputed when older than `max_age`.
    pub async fn today(
        &self,
        store: Option<&crate::context::Store>,
        t: crate::report::queues::Thresholds,
        max_age: std::time::Duration,
    ) -> Arc<crate::report::queues::QueueReport> {
        let mut cached = self.today.lock().await;
        if let Some((at, r)) = cached.as_ref() {
            if at.elapsed() < max_age {
                return r.clone();
            }
        }
        let now = crate::context::time::unix_now();
        let day = now - now.rem_euclid(86_400);
        let rows = match store {
            Some(s) => s
                .call_stat_rows(day, now + 1, t.fcr_days as i64 * 86_400)
                .await
                .unwrap_or_else(|e| {
                    warn!(error = %e, "wallboard figures unavailable");
                    Vec::new()
                }),
            None => Vec::new(),
        };
        let r = Arc::new(crate::report::queues::build(&rows, day, now + 1, t));
        *cached = Some((Instant::now(), r.clone()));
        r
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A desk socket opened for `agent`.
    pub fn attach(&self, agent: &str) -> (u64, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(DESK_QUEUE);
        let mut s = self.lock();
        s.next_conn += 1;
        let id = s.next_conn;
        let conns = s.desks.entry(agent.to_string()).or_default();
        conns.push((id, tx));
        if conns.len() == 1 {
            self.core.desk_open(agent, true);
        }
        (id, rx)
    }

    pub fn detach(&self, agent: &str, conn: u64) {
        let mut s = self.lock();
        if let Some(v) = s.desks.get_mut(agent) {
            v.retain(|(id, _)| *id != conn);
            if v.is_empty() {
                s.desks.remove(agent);
                self.core.desk_open(agent, false);
            }
        }
    }

    /// The card the agent's desk should show (after a reload).
    pub fn card(&self, agent: &str) -> Option<Card> {
        self.lock().cards.get(agent).cloned()
    }

    /// The agent who talked to the caller of an interaction (the last one, after transfers).
    pub fn handled_by(&self, interaction: &str) -> Option<String> {
        self.lock().handled.get(interaction).cloned()
    }

    /// An offer's pop was written to the agent's socket.
    pub fn written(&self, since: Instant) {
        self.metrics
            .pop_latency
            .record_us(since.elapsed().as_micros() as u64);
    }

    /// The agent's desk has the pop on screen: record the latency and let the phone ring.
    pub fn shown(&self, call: CallId, agent: &str) {
        let since = self
            .lock()
            .offers
            .get(&call)
            .and_then(|v| v.iter().find(|(a, _, _)| a == agent).map(|(_, _, t)| *t));
        if let Some(t) = since {
            self.metrics
                .pop_shown_latency
                .record_us(t.elapsed().as_micros() as u64);
            self.core.pop_delivered(call, agent);
        }
    }

    /// Sends to every desk of `agent`; false when none is open.
    fn push(s: &mut State, agent: &str, msg: &Value, offered_at: Option<Instant>) -> bool {
        let Some(conns) = s.desks.get_mut(agent) else {
            return false;
        };
        let text: Arc<str> = Arc::from(msg.to_string());
        conns.retain(|(_, tx)| {
            let p = Push {
                text: text.clone(),
                offered_at,
            };
            // A desk that cannot keep up is dropped; it reconnects and resumes from its card.
            tx.try_send(p).is_ok()
        });
        !conns.is_empty()
    }

    fn withdraw(s: &mut State, call: CallId, agent: &str, reason: &str) {
        if let Some(list) = s.offers.get_mut(&call) {
            list.retain(|(a, _, _)| a != agent);
        }
        if let Some(card) = s.cards.get_mut(agent) {
            if card.pop.call_id == call && card.phase == "offer" {
                card.phase = "withdrawn";
            }
        }
        Self::push(
            s,
            agent,
            &json!({"type": "withdrawn", "call_id": call, "reason": reason}),
            None,
        );
    }

    fn apply(&self, ev: Event, at: Instant) {
        let mut s = self.lock();
        match ev {
            Event::Offered {
                call, agent, pop, ..
            } => {
                s.offers
                    .entry(call)
                    .or_default()
                    .push((agent.clone(), pop.clone(), at));
                s.cards.insert(
                    agent.clone(),
                    Card {
                        phase: "offer",
                        pop: pop.clone(),
                    },
                );
                // No desk open: the core knows (it rang at once, or rings when it hears the
                // last desk closed).
                if s.desks.contains_key(&agent) {
                    Self::push(&mut s, &agent, &offer_json(&pop), Some(at));
                }
            }
            Event::RingNoAnswer { call, agent } => {
                Self::withdraw(&mut s, call, &agent, "not answered in time")
            }
            Event::OfferRejected { call, agent, .. } => {
                Self::withdraw(&mut s, call, &agent, "declined on the phone")
            }
            Event::Connected { call, agent, .. } => {
                let others: Vec<String> = s
                    .offers
                    .remove(&call)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(a, _, _)| a)
                    .filter(|a| *a != agent)
                    .collect();
                for a in others {
                    Self::withdraw(&mut s, call, &a, "taken by another agent");
                }
                if let Some(card) = s.cards.get_mut(&agent) {
                    if card.pop.call_id == call {
                        card.phase = "connected";
                        let id = card.pop.interaction.clone();
                        if s.handled.insert(id.clone(), agent.clone()).is_none() {
                            s.handled_order.push_back(id);
                        }
                        while s.handled_order.len() > HANDLED_KEPT {
                            if let Some(old) = s.handled_order.pop_front() {
                                s.handled.remove(&old);
                            }
                        }
                    }
                }
                Self::push(
                    &mut s,
                    &agent,
                    &json!({"type": "connected", "call_id": call}),
                    None,
                );
            }
            Event::Abandoned { call, .. } => {
                let agents: Vec<String> = s
                    .offers
                    .remove(&call)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(a, _, _)| a)
                    .collect();
                for a in agents {
                    Self::withdraw(&mut s, call, &a, "caller hung up");
                }
            }
            Event::Ended {
                call,
                agent,
                talk_ms,
                by,
            } => {
                s.offers.remove(&call);
                if let Some(card) = s.cards.get_mut(&agent) {
                    if card.pop.call_id == call {
                        card.phase = "ended";
                    }
                }
                Self::push(
                    &mut s,
                    &agent,
                    &json!({"type": "ended", "call_id": call, "talk_ms": talk_ms, "by": by}),
                    None,
                );
            }
            Event::Transferred {
                call,
                from_agent,
                to,
                transfers,
            } => {
                if let Some(card) = s.cards.get_mut(&from_agent) {
                    if card.pop.call_id == call {
                        card.phase = "ended";
                    }
                }
                Self::push(
                    &mut s,
                    &from_agent,
                    &json!({"type": "ended", "call_id": call, "transferred_to": to, "transfers": transfers}),
                    None,
                );
            }
            Event::AgentState {
                agent,
                state,
                reason,
            } => {
                Self::push(
                    &mut s,
                    &agent,
                    &json!({"type": "state", "state": super::wallboard::state_name(state), "reason": reason}),
                    None,
                );
            }
            Event::ContextLookup { ms, .. } => self.metrics.lookup_latency.record_us(ms * 1000),
            _ => {}
        }
    }

    /// Follows the event stream until the core stops.
    pub async fn run(self: Arc<Self>, mut events: broadcast::Receiver<Event>) {
        loop {
            match events.recv().await {
                Ok(ev) => self.apply(ev, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(missed = n, "desk hub fell behind the event stream")
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
