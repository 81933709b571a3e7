//! Qualify (OPTIONS keep-alive) of registered agent phones, like Asterisk's `qualify`: each
//! bound phone of an agent is pinged on its own. One that stops answering is not rung (the
//! agent's other phones still are) and is dropped after a few misses; an agent none of whose
//! phones answers is out of the queues until one answers or registers again. The pings also
//! keep NAT bindings open.

use super::manager::{CallManager, Persist};
use super::phase::Wake;
use crate::sip::dialog::{our_via, random_token};
use crate::sip::msg::{Core, Headers, Request};
use crate::sip::registrar::SavedBinding;
use crate::sip::transaction::{Transport, TxKey};
use crate::sip::uri::{NameAddr, Uri};
use crate::sip::via::{CSeq, Method};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tracing::info;

/// How long a phone has to answer an OPTIONS before it counts as a miss.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Qualify state of all agents (their ping and answer deadlines are in the call layer's one
/// timer heap).
#[derive(Default)]
pub(super) struct Qualify {
    /// OPTIONS in flight: transaction → agent and the contact pinged.
    pending: HashMap<TxKey, (String, Uri)>,
    /// Agents with a ping armed, so a second registration does not start a second chain.
    armed: HashSet<String>,
}

impl CallManager {
    /// An agent registered (or was restored): start pinging its phones.
    pub(super) fn qualify_start(&mut self, now: Instant, agent: &str) {
        if let Some(every) = self.cfg.qualify_every {
            if self.qualify.armed.insert(agent.to_string()) {
                self.timers
                    .arm(now + every, Wake::Qualify(agent.to_string()));
            }
        }
    }

    /// Time to ping every phone `agent` has bound (and to plan the next round); an agent with
    /// none left is not pinged again.
    pub(super) fn qualify_ping(&mut self, now: Instant, agent: &str) {
        let Some(every) = self.cfg.qualify_every else {
            return;
        };
        let targets: Vec<_> = self
            .ep
            .registrar
            .unexpired(agent, now)
            .map(|b| (b.contact.clone(), b.peer, b.path.clone()))
            .collect();
        if targets.is_empty() {
            self.qualify.armed.remove(agent);
            return;
        }
        for (contact, peer, path) in targets {
            let mut req = self.options_for(agent, contact.clone(), peer.transport);
            // Through the edge it registered through (RFC 3327).
            for hop in path {
                req.headers.push(crate::sip::header::HeaderName::Route, hop);
            }
            let key = self.ep.send_request(now, &req, peer);
            self.qualify
                .pending
                .insert(key.clone(), (agent.to_string(), contact));
            self.timers
                .arm(now + ANSWER_WITHIN, Wake::QualifyAnswer(key));
        }
        self.timers
            .arm(now + every, Wake::Qualify(agent.to_string()));
    }

    /// A ping was not answered in time: that phone is not rung, and dropped after a few.
    pub(super) fn qualify_unanswered(&mut self, now: Instant, key: &TxKey) {
        let Some((agent, contact)) = self.qualify.pending.remove(key) else {
            return; // answered meanwhile
        };
        self.ep.tx.forget(key);
        info!(%agent, %contact, "phone does not answer OPTIONS: not rung until it does");
        self.qualify_result(now, &agent, &contact, false);
    }

    /// Any answer to a ping proves the phone is there.
    pub(super) fn qualify_answered(&mut self, now: Instant, key: &TxKey) -> bool {
        let Some((agent, contact)) = self.qualify.pending.remove(key) else {
            return false;
        };
        self.qualify_result(now, &agent, &contact, true);
        true
    }

    fn qualify_result(&mut self, now: Instant, agent: &str, contact: &Uri, answered: bool) {
        let (change, removed) = self.ep.registrar.qualified(agent, contact, answered, now);
        if removed {
            info!(%agent, %contact, "phone dropped after unanswered OPTIONS");
            let unix = self.ep.unix_secs(now);
            let saved = self
                .ep
                .registrar
                .bindings(agent)
                .iter()
                .map(|b| SavedBinding::from_binding(b, now, unix))
                .collect();
            self.persist
                .push_back(Persist::Bindings(agent.to_string(), saved));
        }
        if let Some(r) = change {
            self.reachability(now, r);
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
