//! Desk sessions: token → who is logged in. Tokens are 256 random bits handed to the browser;
//! only their SHA-256 is kept, in memory and (when there is a database) in `desk_sessions`,
//! so a restart or an upgrade does not log everyone out, and the table alone opens nothing.

use crate::context::{Role, SavedSession, Store};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::warn;

/// A logged-in desk user.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    pub agent: String,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub expires: Instant,
}

/// What the session writer does to the database.
#[derive(Debug)]
pub enum SessionWrite {
    Save(SavedSession),
    Delete(String),
    DeleteAgent(String),
}

/// Session writes waiting for the database before new ones are dropped (with a warning: the
/// session still works until a restart).
const WRITES_QUEUE: usize = 1024;

/// Token hashes → sessions.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    persist: Option<mpsc::Sender<SessionWrite>>,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unix_now() -> i64 {
    crate::context::time::unix_now()
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
            persist: None,
        }
    }

    /// Sessions saved before a restart, and a writer that keeps `store` up to date from now on.
    pub fn persistent(ttl: Duration, store: Store, saved: Vec<SavedSession>) -> Sessions {
        let (tx, rx) = mpsc::channel(WRITES_QUEUE);
        tokio::spawn(write_sessions(store, rx));
        let now = Instant::now();
        let unix = unix_now();
        let map = saved
            .into_iter()
            .filter(|s| s.expires_at > unix)
            .map(|s| {
                let left = Duration::from_secs((s.expires_at - unix) as u64);
                let session = Session {
                    agent: s.agent,
                    name: s.name,
                    role: s.role,
                    expires: now + left,
                };
                (s.token_hash, session)
            })
            .collect();
        Sessions {
            map: Mutex::new(map),
            ttl,
            persist: Some(tx),
        }
    }

    fn write(&self, w: SessionWrite) {
        if let Some(tx) = &self.persist {
            if tx.try_send(w).is_err() {
                warn!("session writer is behind; a desk session change was not saved");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session and returns its token (256 random bits).
    pub fn open(&self, now: Instant, agent: &str, name: &str, role: Role) -> String {
        let token: String = (0..4)
            .map(|_| format!("{:016x}", rand::random::<u64>()))
            .collect();
        let key = hash(&token);
        let session = Session {
            agent: agent.to_string(),
            name: name.to_string(),
            role,
            expires: now + self.ttl,
        };
        {
            let mut map = self.lock();
            map.retain(|_, s| s.expires > now);
            map.insert(key.clone(), session);
        }
        self.write(SessionWrite::Save(SavedSession {
            token_hash: key,
            agent: agent.to_string(),
            name: name.to_string(),
            role,
            expires_at: unix_now() + self.ttl.as_secs() as i64,
        }));
        token
    }

    pub fn get(&self, now: Instant, token: &str) -> Option<Session> {
        self.lock()
            .get(&hash(token))
            .filter(|s| s.expires > now)
            .cloned()
    }

    pub fn close(&self, token: &str) {
        let key = hash(token);
        self.lock().remove(&key);
        self.write(SessionWrite::Delete(key));
    }

    /// Ends every session of an agent (removed or role changed).
    pub fn close_agent(&self, agent: &str) {
        self.lock().retain(|_, s| s.agent != agent);
        self.write(SessionWrite::DeleteAgent(agent.to_string()));
    }
}

/// Applies session changes to the database, off the request path.
async fn write_sessions(store: Store, mut rx: mpsc::Receiver<SessionWrite>) {
    while let Some(w) = rx.recv().await {
        let r = match &w {
            SessionWrite::Save(s) => store.save_session(s).await,
            SessionWrite::Delete(h) => store.delete_session(h).await,
            SessionWrite::DeleteAgent(a) => store.delete_agent_sessions(a).await,
        };
        if let Err(e) = r {
            warn!(error = %e, "could not save a desk session change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let tok = s.open(t0, "1001", "Anna", Role::Agent);
        assert_eq!(tok.len(), 64);
        assert_eq!(s.get(t0, &tok).map(|x| x.agent), Some("1001".into()));
        assert!(s.get(t0 + Duration::from_secs(10), &tok).is_none());
        s.close(&tok);
        assert!(s.get(t0, &tok).is_none());
    }

    async fn saved(store: &Store, n: usize) -> Vec<SavedSession> {
        for _ in 0..100 {
            let all = store.load_sessions(unix_now()).await.unwrap();
            if all.len() == n {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} saved sessions");
    }

    /// A restart keeps everyone logged in: a new `Sessions` from the same database knows the
    /// old tokens; the database holds only their hashes; logging out or removing the agent
    /// ends them there too.
    #[tokio::test]
    async fn sessions_survive_a_restart_by_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/s.db", dir.path().display()))
            .await
            .unwrap();
        let ttl = Duration::from_secs(3600);
        let first = Sessions::persistent(ttl, store.clone(), Vec::new());
        let anna = first.open(Instant::now(), "1001", "Anna", Role::Agent);
        let sam = first.open(Instant::now(), "sup", "Sam", Role::Supervisor);
        let rows = saved(&store, 2).await;
        assert!(rows
            .iter()
            .all(|r| r.token_hash != anna && r.token_hash != sam));
        assert!(rows.iter().any(|r| r.token_hash == hash(&anna)));

        let second = Sessions::persistent(ttl, store.clone(), rows);
        let s = second.get(Instant::now(), &anna).expect("still logged in");
        assert_eq!((s.agent.as_str(), s.role), ("1001", Role::Agent));
        assert!(second.get(Instant::now(), "not-a-token").is_none());
        second.close(&anna);
        saved(&store, 1).await;
        second.close_agent("sup");
        saved(&store, 0).await;
        assert!(second.get(Instant::now(), &sam).is_none());
    }
}
