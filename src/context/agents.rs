//! Agents and their skills.

use super::{Store, StoreError};
use crate::sip::auth::Credentials;
use sqlx::Row;
use std::collections::HashMap;

/// One agent as the directory (database) knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    pub credentials: Credentials,
    pub skills: HashMap<String, u8>,
    /// The agent's own after-call time (wins over the queue's).
    pub wrapup: Option<std::time::Duration>,
}

/// An agent as listed by `acd agents list`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub skills: Vec<(String, u8)>,
    /// The agent's own after-call seconds (`None`: each queue's `wrapup_s`).
    pub wrapup_s: Option<u32>,
}

/// Parses `sales:5,support:2` (level defaults to 5, must be 1..=10).
pub fn parse_skills(s: &str) -> Result<Vec<(String, u8)>, StoreError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, level) = match part.split_once(':') {
            Some((n, l)) => {
                let l: u8 = l
                    .trim()
                    .parse()
                    .ok()
                    .filter(|l| (1..=10).contains(l))
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("skill '{part}': level must be 1..10"))
                    })?;
                (n.trim(), l)
            }
            None => (part, 5),
        };
        if !crate::sip::header::is_token(name) {
            return Err(StoreError::Invalid(format!(
                "skill '{name}' is not a plain word"
            )));
        }
        out.push((name.to_string(), level));
    }
    Ok(out)
}

/// The `wrapup_s` column of an agents row (NULL or negative: none of their own).
fn wrapup_of(r: &sqlx::any::AnyRow) -> Result<Option<std::time::Duration>, sqlx::Error> {
    let s: Option<i64> = r.try_get("wrapup_s")?;
    Ok(s.filter(|s| *s >= 0)
        .map(|s| std::time::Duration::from_secs(s as u64)))
}

async fn insert_skills(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    skills: &[(String, u8)],
) -> Result<(), StoreError> {
    for (skill, level) in skills {
        sqlx::query("INSERT INTO agent_skills (agent_id, skill, level) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(skill)
            .bind(*level as i32)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn valid_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
    {
        return Err(StoreError::Invalid(format!(
            "agent id '{id}' must be 1-64 letters, digits, '-', '_' or '.' (it is the SIP user name)"
        )));
    }
    Ok(())
}

/// What a desk user may do. Every user is an agent row (the same id and password as the SIP
/// account); the role widens what the desk shows.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Own state, own pops, own calls.
    Agent,
    /// Plus the wallboard and every agent's state.
    Supervisor,
    /// Reports only: no call content.
    Marketer,
    /// Everything, including managing agents.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "agent" => Some(Role::Agent),
            "supervisor" => Some(Role::Supervisor),
            "marketer" => Some(Role::Marketer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Marketer => "marketer",
            Role::Admin => "admin",
        }
    }
}

/// What a desk log-in checks the password against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentLogin {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub realm: String,
    pub ha1_sha256: String,
}

impl Store {
    /// Sets an agent's desk role; false if there is no such agent.
    /// Gives an agent their own after-call time, or (`None`) back to the queues'.
    pub async fn set_wrapup(&self, id: &str, secs: Option<u32>) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE agents SET wrapup_s = $1 WHERE id = $2")
            .bind(secs.map(i64::from))
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    pub async fn set_role(&self, id: &str, role: Role) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE agents SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The stored hash and role of one agent, for a desk log-in.
    pub async fn agent_login(&self, id: &str) -> Result<Option<AgentLogin>, StoreError> {
        let Some(r) =
            sqlx::query("SELECT id, name, role, realm, ha1_sha256 FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let role: String = r.try_get("role")?;
        Ok(Some(AgentLogin {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: Role::parse(&role).unwrap_or(Role::Agent),
            realm: r.try_get("realm")?,
            ha1_sha256: r.try_get("ha1_sha256")?,
        }))
    }

    /// Adds an agent; the password is turned into HA1 hashes for `realm` and then forgotten.
    pub async fn add_agent(
        &self,
        id: &str,
        name: &str,
        realm: &str,
        password: &str,
        skills: &[(String, u8)],
    ) -> Result<(), StoreError> {
        valid_id(id)?;
        if password.len() < 4 {
            return Err(StoreError::Invalid(
                "password must be at least 4 characters".into(),
            ));
        }
        let c = Credentials::from_password(id, realm, password);
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT id FROM agents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::AgentExists(id.to_string()));
        }
        sqlx::query(
            "INSERT INTO agents (id, name, realm, ha1_md5, ha1_sha256) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(realm)
        .bind(&c.ha1_md5)
        .bind(&c.ha1_sha256)
        .execute(&mut *tx)
        .await?;
        insert_skills(&mut tx, id, skills).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces an agent's skills and levels; false if there is no such agent. The ACD sees the
    /// change at the next directory reload (`database.reload_s`), calls in progress keep theirs.
    pub async fn set_skills(&self, id: &str, skills: &[(String, u8)]) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT id FROM agents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM agent_skills WHERE agent_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_skills(&mut tx, id, skills).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes an agent; false if there was none.
    pub async fn remove_agent(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM agent_skills WHERE agent_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM agents WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn skills(&self) -> Result<HashMap<String, Vec<(String, u8)>>, StoreError> {
        let rows = sqlx::query(
            "SELECT agent_id, skill, CAST(level AS BIGINT) AS level FROM agent_skills ORDER BY agent_id, skill",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut m: HashMap<String, Vec<(String, u8)>> = HashMap::new();
        for r in rows {
            let level: i64 = r.try_get("level")?;
            m.entry(r.try_get("agent_id")?)
                .or_default()
                .push((r.try_get("skill")?, level.clamp(1, 10) as u8));
        }
        Ok(m)
    }

    pub async fn list_agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        let mut skills = self.skills().await?;
        let rows = sqlx::query("SELECT id, name, role, wrapup_s FROM agents ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let role: String = r.try_get("role")?;
                Ok(AgentRow {
                    role: Role::parse(&role).unwrap_or(Role::Agent),
                    skills: skills.remove(&id).unwrap_or_default(),
                    name: r.try_get("name")?,
                    wrapup_s: wrapup_of(&r)?.map(|d| d.as_secs() as u32),
                    id,
                })
            })
            .collect()
    }

    /// Everything the SIP layer and the ACD need about agents, loaded off the call path.
    /// Agents whose hashes were made for another realm are skipped (they could never log in).
    pub async fn load_directory(&self, realm: &str) -> Result<Vec<AgentRecord>, StoreError> {
        let mut skills = self.skills().await?;
        let rows = sqlx::query(
            "SELECT id, name, realm, ha1_md5, ha1_sha256, wrapup_s FROM agents ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let agent_realm: String = r.try_get("realm")?;
            let id: String = r.try_get("id")?;
            if agent_realm != realm {
                tracing::warn!(agent = %id, %agent_realm, %realm, "agent hashed for another realm: re-add with a password");
                continue;
            }
            out.push(AgentRecord {
                skills: skills.remove(&id).unwrap_or_default().into_iter().collect(),
                wrapup: wrapup_of(&r)?,
                name: r.try_get("name")?,
                credentials: Credentials {
                    ha1_md5: r.try_get("ha1_md5")?,
                    ha1_sha256: r.try_get("ha1_sha256")?,
                },
                id,
            });
        }
        Ok(out)
    }
}
