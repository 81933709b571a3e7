//! Qualify (OPTIONS keep-alive) of registered agent phones, like Asterisk's `qualify`: a phone
//! that stops answering is taken out of the ACD until it answers again, so callers do not ring a
//! softphone that vanished without un-registering. The pings also keep NAT bindings open.

use super::manager::CallManager;
use crate::events::Event;
use crate::sip::dialog::{our_via, random_token};
use crate::sip::msg::{Core, Headers, Request};
use crate::sip::transaction::{Transport, TxKey};
use crate::sip::uri::{NameAddr, Uri};
use crate::sip::via::{CSeq, Method};
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tracing::info;

/// How long a phone has to answer an OPTIONS before it counts as gone.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Qualify state of all agents.
#[derive(Default)]
pub(super) struct Qualify {
    /// Next ping per agent (lazily cleaned: an agent no longer registered is just dropped).
    due: BinaryHeap<Reverse<(Instant, String)>>,
    /// OPTIONS in flight: transaction → (agent, answer deadline).
    pending: HashMap<TxKey, (String, Instant)>,
    /// Agents whose phone failed to answer; they are offline in the ACD.
    silent: HashSet<String>,
}

impl CallManager {
    /// An agent registered (or was restored): start pinging its phone.
    pub(super) fn qualify_start(&mut self, now: Instant, agent: &str) {
        self.qualify.silent.remove(agent);
        if let Some(every) = self.cfg.qualify_every {
            self.qualify
                .due
                .push(Reverse((now + every, agent.to_string())));
        }
    }

    /// Sends due pings and declares silent the phones that did not answer in time.
    pub(super) fn qualify_tick(&mut self, now: Instant) {
        let Some(every) = self.cfg.qualify_every else {
            return;
        };
        while let Some(Reverse((at, agent))) = self.qualify.due.peek().cloned() {
            if at > now {
                break;
            }
            self.qualify.due.pop();
            let Some(binding) = self.ep.registrar.lookup(&agent, now).cloned() else {
                continue; // not registered any more: stop pinging
            };
            let req = self.options_for(&agent, binding.contact.clone(), binding.peer.transport);
            let key = self.ep.send_request(now, &req, binding.peer);
            self.qualify
                .pending
                .insert(key, (agent.clone(), now + ANSWER_WITHIN));
            self.qualify.due.push(Reverse((now + every, agent)));
        }
        let expired: Vec<TxKey> = self
            .qualify
            .pending
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            if let Some((agent, _)) = self.qualify.pending.remove(&key) {
                self.ep.tx.forget(&key);
                if self.qualify.silent.insert(agent.clone()) {
                    info!(%agent, "phone does not answer OPTIONS: agent taken out of the queues");
                    self.acd.agent_offline(now, &agent);
                    self.events
                        .push_back(Event::AgentReachable { agent, up: false });
                }
            }
        }
    }

    /// Any answer to a ping proves the phone is there.
    pub(super) fn qualify_answered(&mut self, now: Instant, key: &TxKey) -> bool {
        let Some((agent, _)) = self.qualify.pending.remove(key) else {
            return false;
        };
        if self.qualify.silent.remove(&agent) && self.ep.registrar.lookup(&agent, now).is_some() {
            info!(%agent, "phone answers OPTIONS again: agent back in the queues");
            self.acd.agent_online(now, &agent);
            self.events
                .push_back(Event::AgentReachable { agent, up: true });
        }
        true
    }

    /// The earliest qualify deadline, for the driver's timer.
    pub(super) fn qualify_timeout(&self) -> Option<Instant> {
        let next = self.qualify.due.peek().map(|Reverse((at, _))| *at);
        let answer = self.qualify.pending.values().map(|(_, d)| *d).min();
        match (next, answer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn options_for(&self, agent: &str, contact: Uri, transport: Transport) -> Request {
        let me = self.contact_on(transport);
        let via = our_via(transport, &self.via_host_on(transport));
        let mut from = me.clone();
        from.params.set("tag", Some(random_token()));
        Request {
            method: Method::Options,
            uri: contact,
            core: Core {
                vias: vec![via],
                from,
                to: NameAddr::new(Uri::sip(Some(agent), &me.uri.host, None)),
                call_id: format!("{}@acd", random_token()),
                cseq: CSeq {
                    seq: 1,
                    method: Method::Options,
                },
                max_forwards: Some(70),
                contacts: vec![me],
                contact_star: false,
            },
            headers: Headers(vec![(
                crate::sip::header::HeaderName::UserAgent,
                crate::sip::msg::PRODUCT.to_string(),
            )]),
            body: Bytes::new(),
        }
    }
}
