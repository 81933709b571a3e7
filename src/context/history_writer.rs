//! The interaction history writer: folds the event stream into one row and one event log per
//! call and writes them in batches, off the call path. When the database is unreachable the
//! batches go to a local spool (one JSON file each, written before anything is dropped) and
//! are replayed, oldest first, once it answers again; every write is idempotent, so nothing is
//! lost and nothing is written twice.

use super::history::{CallRecord, EventRow};
use super::{Store, StoreError};
use crate::acd::CallId;
use crate::events::Event;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Calls in progress, folded from events; hands back a row and its event log when a call is
/// over.
#[derive(Default)]
pub struct HistoryBook {
    open: HashMap<CallId, (CallRecord, Vec<EventRow>)>,
    /// Events not logged because their call's log was full (a caller flooding INFO or DTMF).
    pub truncated: u64,
}

/// A call's event log holds at most this many events (the rest still shape its row); one more
/// entry of kind "truncated" marks where logging stopped.
pub const MAX_EVENTS_PER_CALL: usize = 500;

/// The event as stored in the log: its JSON without the screen pop (the pop repeats the
/// caller context, which the row and the context store already hold).
fn log_entry(ev: &Event) -> (String, String) {
    let data = match ev {
        Event::Offered {
            call, agent, queue, ..
        } => serde_json::json!({"type": "offered", "call": call, "agent": agent, "queue": queue})
            .to_string(),
        // The snapshot is the call's whole state (SIP messages included): its phase says enough.
        Event::CallResumed { call, snapshot } => serde_json::json!({
            "type": "call_resumed",
            "call": call,
            "phase": serde_json::to_value(&snapshot.phase).ok().and_then(|p| p.get("phase").cloned()),
        })
        .to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    (kind_of(&data), data)
}

/// The `type` of an event's JSON: first for a serialized `Event` (internally tagged), anywhere
/// for a `json!` map (which sorts its keys).
fn kind_of(data: &str) -> String {
    if let Some(kind) = data
        .strip_prefix("{\"type\":\"")
        .and_then(|r| r.split('"').next())
    {
        return kind.to_string();
    }
    serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("type")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

impl HistoryBook {
    /// Applies one event at `unix_ms`; returns the finished row and log when the call ended.
    pub fn apply(&mut self, ev: &Event, unix_ms: i64) -> Option<(CallRecord, Vec<EventRow>)> {
        let unix_now = unix_ms / 1000;
        if let Event::CallArrived {
            call,
            interaction,
            caller,
            dialed,
        } = ev
        {
            self.open.insert(
                *call,
                (
                    CallRecord {
                        id: interaction.clone(),
                        phone: caller.clone(),
                        started_at: unix_now,
                        dialed: dialed.clone(),
                        ..Default::default()
                    },
                    Vec::new(),
                ),
            );
        }
        // A callback kept over a restart: its row goes on under the same interaction.
        if let Event::CallbackRestored { call, saved } = ev {
            self.open.entry(*call).or_insert_with(|| {
                (
                    CallRecord {
                        id: saved.interaction.clone(),
                        phone: saved.number.clone(),
                        started_at: saved.arrived_at_ms / 1000,
                        dialed: saved.dialed.clone(),
                        queue: Some(saved.queue.clone()),
                        ..Default::default()
                    },
                    Vec::new(),
                )
            });
        }
        // A call taken over after a crash: its row goes on from what the snapshot kept.
        if let Event::CallResumed { call, snapshot } = ev {
            self.open
                .entry(*call)
                .or_insert_with(|| (resumed_record(snapshot), Vec::new()));
        }
        let call = ev.call()?;
        let (rec, log) = self.open.get_mut(&call)?;
        if log.len() < MAX_EVENTS_PER_CALL {
            let (kind, data) = log_entry(ev);
            log.push(EventRow {
                interaction: rec.id.clone(),
                seq: log.len() as i32,
                at_ms: unix_ms,
                kind,
                data,
            });
        } else {
            if log.len() == MAX_EVENTS_PER_CALL {
                log.push(EventRow {
                    interaction: rec.id.clone(),
                    seq: log.len() as i32,
                    at_ms: unix_ms,
                    kind: "truncated".into(),
                    data: format!("{{\"type\":\"truncated\",\"after\":{MAX_EVENTS_PER_CALL}}}"),
                });
            }
            self.truncated += 1;
        }
        let r = rec;
        match ev {
            Event::ContextLookup {
                number,
                customer,
                campaigns,
                ticket,
                ..
            } => {
                r.ticket = ticket.clone();
                r.phone = number.clone();
                r.customer_id = customer.clone();
                r.campaign = campaigns.first().cloned();
            }
            Event::Routed {
                queue,
                rule,
                reason,
                ..
            } => {
                r.queue = Some(queue.clone());
                r.rule = rule.clone();
                r.reason = Some(reason.clone());
            }
            Event::MenuChoice { queue: Some(q), .. } | Event::Queued { queue: q, .. } => {
                r.queue = Some(q.clone());
            }
            Event::Connected { agent, wait_ms, .. } => {
                r.agent_id = Some(agent.clone());
                r.wait_ms.get_or_insert(*wait_ms as i64);
            }
            Event::Recording { path, .. } => {
                r.recording = Some(path.clone());
            }
            Event::Transferred { .. } => {
                r.transfers += 1;
            }
            Event::Ended {
                call,
                agent,
                talk_ms,
                ..
            } => {
                r.agent_id = Some(agent.clone());
                r.outcome = Some("answered".into());
                r.talk_ms = Some(*talk_ms as i64);
                return self.open.remove(call);
            }
            Event::TimedOut { call, wait_ms, .. } => {
                r.outcome = Some("timed out".into());
                r.wait_ms = Some(*wait_ms as i64);
                return self.open.remove(call);
            }
            Event::CallbackFailed { call, wait_ms, .. } => {
                r.outcome = Some("callback failed".into());
                r.wait_ms = Some(*wait_ms as i64);
                return self.open.remove(call);
            }
            Event::Abandoned { call, wait_ms, .. } => {
                r.outcome = Some(if r.transfers > 0 {
                    "abandoned after transfer".into()
                } else {
                    "abandoned".into()
                });
                r.wait_ms = Some(*wait_ms as i64);
                return self.open.remove(call);
            }
            _ => {}
        }
        None
    }
}

/// The history row of a resumed call as far as it had got: the routing, the context and (for a
/// connected call) the agent and wait are those of the call before the restart.
fn resumed_record(s: &super::saved_call::CallSnapshot) -> CallRecord {
    use super::saved_call::SavedPhase;
    let ctx = s.context.as_ref();
    let (agent_id, wait_ms) = match &s.phase {
        SavedPhase::Connected {
            agent,
            connected_ms,
            ..
        } => (
            Some(agent.agent.clone()),
            Some(connected_ms.saturating_sub(s.arrived_ms) as i64),
        ),
        _ => (None, None),
    };
    CallRecord {
        id: s.interaction.clone(),
        phone: ctx.map_or_else(|| s.caller_number.clone(), |c| c.number.clone()),
        customer_id: ctx.and_then(|c| c.customer.as_ref().map(|x| x.id.clone())),
        started_at: (s.arrived_ms / 1000) as i64,
        dialed: s.dialed.clone(),
        queue: Some(s.queue.clone()),
        rule: s.route.as_ref().and_then(|r| r.rule.clone()),
        reason: s.route.as_ref().map(|r| r.reason.clone()),
        campaign: ctx.and_then(|c| c.campaigns.first().map(|x| x.campaign.clone())),
        agent_id,
        wait_ms,
        transfers: s.transfers as i32,
        ticket: ctx.and_then(|c| c.tickets.first().map(|t| t.id.clone())),
        ..Default::default()
    }
}

/// One unit of history work, as written to the database or kept in the spool.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Item {
    Calls {
        rows: Vec<CallRecord>,
        events: Vec<EventRow>,
    },
    Rating {
        interaction: String,
        rating: u8,
    },
    Tag {
        number: String,
        tag: String,
        at: i64,
    },
    CallbackSave {
        saved: crate::context::SavedCallback,
    },
    CallbackAttempt {
        interaction: String,
        attempts: u32,
    },
    CallbackQueue {
        interaction: String,
        queue: String,
    },
    CallbackDone {
        interaction: String,
    },
}

/// Which open calls are callbacks, so their saved row follows them: kept when asked for,
/// tries counted, deleted when the callback is over however it ends.
#[derive(Default)]
struct CallbackBook {
    open: HashMap<CallId, String>,
}

impl CallbackBook {
    fn apply(&mut self, ev: &Event) -> Option<Item> {
        match ev {
            Event::CallbackRequested { call, saved } => {
                self.open.insert(*call, saved.interaction.clone());
                Some(Item::CallbackSave {
                    saved: (**saved).clone(),
                })
            }
            Event::CallbackRestored { call, saved } => {
                self.open.insert(*call, saved.interaction.clone());
                None
            }
            Event::CallbackDialing { call, attempt, .. } => {
                self.open.get(call).map(|i| Item::CallbackAttempt {
                    interaction: i.clone(),
                    attempts: *attempt,
                })
            }
            Event::Overflow { call, to, .. } => self.open.get(call).map(|i| Item::CallbackQueue {
                interaction: i.clone(),
                queue: to.clone(),
            }),
            Event::CallbackAnswered { call }
            | Event::CallbackFailed { call, .. }
            | Event::Abandoned { call, .. }
            | Event::TimedOut { call, .. }
            | Event::Ended { call, .. } => self
                .open
                .remove(call)
                .map(|interaction| Item::CallbackDone { interaction }),
            _ => None,
        }
    }
}

async fn apply(store: &Store, item: &Item) -> Result<(), StoreError> {
    match item {
        Item::Calls { rows, events } => store.write_calls(rows, events).await,
        Item::Rating {
            interaction,
            rating,
        } => store.set_rating(interaction, *rating).await,
        Item::Tag { number, tag, at } => store.tag_number(number, tag, *at).await,
        Item::CallbackSave { saved } => {
            store.save_callback(saved).await?;
            match &saved.granted {
                Some(number) => {
                    let day = saved.requested_at_ms.div_euclid(86_400_000);
                    store
                        .save_callback_grant(&saved.interaction, number, day)
                        .await
                }
                None => Ok(()),
            }
        }
        Item::CallbackAttempt {
            interaction,
            attempts,
        } => store.set_callback_attempts(interaction, *attempts).await,
        Item::CallbackQueue { interaction, queue } => {
            store.set_callback_queue(interaction, queue).await
        }
        Item::CallbackDone { interaction } => store.delete_callback(interaction).await,
    }
}

/// Work the database could not take yet: files in `dir` (kept across restarts), or memory
/// when the directory cannot be written.
struct Spool {
    dir: Option<PathBuf>,
    next: u64,
    memory: VecDeque<Item>,
}

impl Spool {
    fn open(dir: Option<PathBuf>) -> Spool {
        let dir = dir.filter(|d| match std::fs::create_dir_all(d) {
            Ok(()) => true,
            Err(e) => {
                warn!(dir = %d.display(), error = %e, "history spool directory unusable; spooling in memory");
                false
            }
        });
        let mut s = Spool {
            dir,
            next: 0,
            memory: VecDeque::new(),
        };
        let files = s.files();
        s.next = files.last().and_then(|p| seq_of(p)).map_or(0, |n| n + 1);
        if !files.is_empty() {
            info!(
                batches = files.len(),
                "history spool from an earlier run will be replayed"
            );
        }
        s
    }

    fn files(&self) -> Vec<PathBuf> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| seq_of(p).is_some())
            .collect();
        v.sort();
        v
    }

    fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.files().is_empty()
    }

    /// Keeps `item` durably (write to a temporary name, sync, rename).
    fn push(&mut self, item: Item) {
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{:020}.json", self.next));
            let tmp = dir.join(format!("{:020}.tmp", self.next));
            let written = serde_json::to_vec(&item)
                .map_err(std::io::Error::other)
                .and_then(|bytes| {
                    use std::io::Write;
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(&bytes)?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, &path)
                });
            match written {
                Ok(()) => {
                    self.next += 1;
                    return;
                }
                Err(e) => warn!(error = %e, "cannot write the history spool; keeping it in memory"),
            }
        }
        self.memory.push_back(item);
    }
}

type SharedSpool = Arc<Mutex<Spool>>;

fn lock(s: &SharedSpool) -> std::sync::MutexGuard<'_, Spool> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn seq_of(p: &std::path::Path) -> Option<u64> {
    if p.extension()? != "json" {
        return None;
    }
    p.file_stem()?.to_str()?.parse().ok()
}

/// Calls per write, and the longest a finished call waits to be written.
const BATCH: usize = 200;
const LINGER: Duration = Duration::from_millis(20);
/// How often spooled work is retried while the database is away.
const RETRY: Duration = Duration::from_secs(1);
/// A write that takes longer is given up (and spooled): the pool may be waiting on a database
/// that is not there.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);
/// Batches waiting for the database before new ones go straight to the spool.
const QUEUE: usize = 64;

async fn apply_within(store: &Store, item: &Item) -> bool {
    match tokio::time::timeout(WRITE_TIMEOUT, apply(store, item)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            warn!(error = %e, "history write failed; spooling until the database answers");
            false
        }
        Err(_) => {
            warn!("history write timed out; spooling until the database answers");
            false
        }
    }
}

/// Replays spooled work oldest first; stops at the first failure. Returns how many went in.
async fn drain(store: &Store, spool: &SharedSpool) -> usize {
    let mut done = 0;
    let files = lock(spool).files();
    for path in files {
        let item: Option<Item> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(item) = item else {
            warn!(file = %path.display(), "unreadable history spool file set aside");
            let _ = std::fs::rename(&path, path.with_extension("bad"));
            continue;
        };
        if !apply_within(store, &item).await {
            return done;
        }
        let _ = std::fs::remove_file(&path);
        done += 1;
    }
    loop {
        let Some(item) = lock(spool).memory.pop_front() else {
            return done;
        };
        if !apply_within(store, &item).await {
            lock(spool).memory.push_front(item);
            return done;
        }
        done += 1;
    }
}

/// Writes what the intake hands over; while anything is spooled, new work joins the spool so
/// the database sees it in order once it is back.
async fn sink(store: Store, mut rx: mpsc::Receiver<Item>, spool: SharedSpool) {
    let mut retry = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            item = rx.recv() => {
                let Some(item) = item else {
                    drain(&store, &spool).await;
                    return;
                };
                if !lock(&spool).is_empty() || !apply_within(&store, &item).await {
                    lock(&spool).push(item);
                }
            }
            _ = retry.tick() => {
                if lock(&spool).is_empty() {
                    continue;
                }
                let n = drain(&store, &spool).await;
                if n > 0 && lock(&spool).is_empty() {
                    info!(batches = n, "history spool replayed; the database is back");
                }
            }
        }
    }
}

/// Follows the event stream and writes each finished call, batching under load and spooling
/// to `spool_dir` while the database is away. The event intake never waits on the database.
pub async fn run_writer(
    store: Store,
    mut events: mpsc::Receiver<crate::events::Stamped>,
    spool_dir: Option<PathBuf>,
) {
    let spool: SharedSpool = Arc::new(Mutex::new(Spool::open(spool_dir)));
    let (tx, rx) = mpsc::channel(QUEUE);
    let sink_task = tokio::spawn(sink(store, rx, spool.clone()));
    let hand_over = |item: Item| {
        if let Err(e) = tx.try_send(item) {
            // The database is slow or away: keep the work safe instead of waiting.
            let item = match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            };
            lock(&spool).push(item);
        }
    };
    let mut book = HistoryBook::default();
    let mut callbacks = CallbackBook::default();
    let (mut rows, mut log): (Vec<CallRecord>, Vec<EventRow>) = (Vec::new(), Vec::new());
    let flush = |rows: &mut Vec<CallRecord>, log: &mut Vec<EventRow>| {
        if !rows.is_empty() || !log.is_empty() {
            hand_over(Item::Calls {
                rows: std::mem::take(rows),
                events: std::mem::take(log),
            });
        }
    };
    loop {
        let ev = if rows.is_empty() {
            events.recv().await
        } else {
            match tokio::time::timeout(LINGER, events.recv()).await {
                Ok(ev) => ev,
                Err(_) => {
                    flush(&mut rows, &mut log);
                    continue;
                }
            }
        };
        let Some(crate::events::Stamped {
            at_ms, event: ev, ..
        }) = ev
        else {
            flush(&mut rows, &mut log);
            drop(tx);
            let _ = sink_task.await;
            return;
        };
        match ev {
            Event::SurveyRating {
                interaction,
                number,
                rating,
                complaint,
                ..
            } => {
                // The call's row may still be in the batch: it goes first.
                flush(&mut rows, &mut log);
                hand_over(Item::Rating {
                    interaction,
                    rating,
                });
                if complaint {
                    let at = at_ms / 1000;
                    hand_over(Item::Tag {
                        number,
                        tag: "complaint".into(),
                        at,
                    });
                }
            }
            ev => {
                if let Some(item) = callbacks.apply(&ev) {
                    hand_over(item);
                }
                // Stamped by the core when it happened, not when it reached us.
                if let Some((row, entries)) = book.apply(&ev, at_ms) {
                    rows.push(row);
                    log.extend(entries);
                    if rows.len() >= BATCH {
                        flush(&mut rows, &mut log);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::SavedCallback;

    fn saved() -> Arc<SavedCallback> {
        Arc::new(SavedCallback {
            interaction: "boot-7".into(),
            number: "+15551234567".into(),
            target: "sip:+15551234567@192.0.2.1".into(),
            peer: "192.0.2.1:5060".parse().unwrap(),
            queue: "sales".into(),
            priority: 0,
            dialed: "100".into(),
            pcma: true,
            arrived_at_ms: 1_000,
            requested_at_ms: 61_000,
            attempts: 0,
            granted: None,
        })
    }

    fn kind(i: Option<Item>) -> String {
        i.map(|i| {
            serde_json::to_value(&i).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap_or_default()
    }

    #[test]
    fn every_logged_event_is_filed_under_its_type_whatever_the_key_order() {
        assert_eq!(kind_of(r#"{"type":"queued","call":1}"#), "queued");
        assert_eq!(
            kind_of(r#"{"agent":"1001","call":1,"queue":"sales","type":"offered"}"#),
            "offered"
        );
        assert_eq!(kind_of("not json"), "unknown");
    }

    #[test]
    fn a_flood_of_digits_cannot_grow_a_calls_event_log_without_bound() {
        let mut b = HistoryBook::default();
        let arrived = Event::CallArrived {
            call: 3,
            interaction: "i-3".into(),
            caller: "+15551234567".into(),
            dialed: "100".into(),
        };
        assert!(b.apply(&arrived, 1_000).is_none());
        for _ in 0..10_000 {
            b.apply(
                &Event::Dtmf {
                    call: 3,
                    digit: '5',
                },
                1_000,
            );
        }
        let (_, log) = b
            .apply(
                &Event::Abandoned {
                    call: 3,
                    queue: "sales".into(),
                    wait_ms: 5,
                },
                2_000,
            )
            .expect("the call is over");
        assert_eq!(log.len(), MAX_EVENTS_PER_CALL + 1);
        assert_eq!(log[MAX_EVENTS_PER_CALL].kind, "truncated");
        assert_eq!(b.truncated, 10_002 - MAX_EVENTS_PER_CALL as u64);
    }

    #[test]
    fn a_saved_callback_follows_its_call_until_it_is_over() {
        let mut b = CallbackBook::default();
        assert_eq!(
            kind(b.apply(&Event::Abandoned {
                call: 7,
                queue: "sales".into(),
                wait_ms: 1
            })),
            ""
        );
        let req = Event::CallbackRequested {
            call: 7,
            saved: saved(),
        };
        assert_eq!(kind(b.apply(&req)), "callback_save");
        let dial = Event::CallbackDialing {
            call: 7,
            agent: "1001".into(),
            attempt: 2,
        };
        assert!(matches!(
            b.apply(&dial),
            Some(Item::CallbackAttempt { attempts: 2, .. })
        ));
        let moved = Event::Overflow {
            call: 7,
            from: "sales".into(),
            to: "backup".into(),
        };
        assert!(
            matches!(b.apply(&moved), Some(Item::CallbackQueue { queue, .. }) if queue == "backup")
        );
        assert_eq!(
            kind(b.apply(&Event::CallbackAnswered { call: 7 })),
            "callback_done"
        );
        assert!(
            b.apply(&Event::Ended {
                call: 7,
                agent: "1001".into(),
                by: crate::events::Side::Agent,
                talk_ms: 5
            })
            .is_none(),
            "deleted once"
        );
        // Restored after a restart: not saved again, but deleted when it ends.
        assert!(b
            .apply(&Event::CallbackRestored {
                call: 9,
                saved: saved()
            })
            .is_none());
        assert_eq!(
            kind(b.apply(&Event::CallbackFailed {
                call: 9,
                queue: "sales".into(),
                attempts: 3,
                wait_ms: 9
            })),
            "callback_done"
        );
    }

    #[test]
    fn a_restored_callback_continues_its_history_row() {
        let mut h = HistoryBook::default();
        h.apply(
            &Event::CallbackRestored {
                call: 9,
                saved: saved(),
            },
            500_000,
        );
        let (row, log) = h
            .apply(
                &Event::CallbackFailed {
                    call: 9,
                    queue: "sales".into(),
                    attempts: 3,
                    wait_ms: 9,
                },
                501_000,
            )
            .expect("finished");
        assert_eq!((row.id.as_str(), row.started_at), ("boot-7", 1));
        assert_eq!(row.outcome.as_deref(), Some("callback failed"));
        assert_eq!(log.len(), 2);
    }
}
