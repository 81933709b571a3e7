//! Qualify (OPTIONS keep-alive) of registered agent phones, like Asterisk's `qualify`: a phone
//! that stops answering is taken out of the ACD until it answers again, so callers do not ring a
//! softphone that vanished without un-registering. The pings also keep NAT bindings open.

use super::manager::CallManager;
use super::phase::Wake;
use crate::events::Event;
use crate::sip::dialog::{our_via, random_token};
use crate::sip::msg::{Core, Headers, Request};
use crate::sip::transaction::{Transport, TxKey};
use crate::sip::uri::{NameAddr, Uri};
use crate::sip::via::{CSeq, Method};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tracing::info;

/// How long a phone has to answer an OPTIONS before it counts as gone.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Qualify state of all agents (their ping and answer deadlines are in the call layer's one
/// timer heap).
#[derive(Default)]
pub(super) struct Qualify {
    /// OPTIONS in flight: transaction → agent.
    pending: HashMap<TxKey, String>,
    /// Agents whose phone failed to answer; they are offline in the ACD.
    silent: HashSet<String>,
}

impl CallManager {
    /// An agent registered (or was restored): start pinging its phone.
    pub(super) fn qualify_start(&mut self, now: Instant, agent: &str) {
        self.qualify.silent.remove(agent);
        if let Some(every) = self.cfg.qualify_every {
            self.timers
                .arm(now + every, Wake::Qualify(agent.to_string()));
        }
    }

    /// Time to ping `agent`'s phone (and to plan the next ping); an agent no longer
    /// registered is not pinged again.
    pub(super) fn qualify_ping(&mut self, now: Instant, agent: &str) {
        let Some(every) = self.cfg.qualify_every else {
            return;
        };
        let Some(binding) = self.ep.registrar.lookup(agent, now).cloned() else {
            return;
        };
        let req = self.options_for(agent, binding.contact.clone(), binding.peer.transport);
        let key = self.ep.send_request(now, &req, binding.peer);
        self.qualify.pending.insert(key.clone(), agent.to_string());
        self.timers
            .arm(now + ANSWER_WITHIN, Wake::QualifyAnswer(key));
        self.timers
            .arm(now + every, Wake::Qualify(agent.to_string()));
    }

    /// A ping was not answered in time: the phone is declared silent.
    pub(super) fn qualify_unanswered(&mut self, now: Instant, key: &TxKey) {
        let Some(agent) = self.qualify.pending.remove(key) else {
            return; // answered meanwhile
        };
        self.ep.tx.forget(key);
        if self.qualify.silent.insert(agent.clone()) {
            info!(%agent, "phone does not answer OPTIONS: agent taken out of the queues");
            self.acd.agent_offline(now, &agent);
            self.events
                .push_back(Event::AgentReachable { agent, up: false });
        }
    }

    /// Any answer to a ping proves the phone is there.
    pub(super) fn qualify_answered(&mut self, now: Instant, key: &TxKey) -> bool {
        let Some(agent) = self.qualify.pending.remove(key) else {
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
