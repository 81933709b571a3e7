//! IVR menus: a prompt, DTMF options that lead to a queue or another menu, a timeout, a number
//! of retries, an invalid-input prompt, and a default queue when the caller does not choose.

use crate::media::prompt::PromptRef;
use crate::media::prompt::{default_invalid, default_menu, Prompt};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MenuToml {
    pub name: String,
    /// 8 kHz mono WAV, relative to the dialplan file; built-in beeps if absent.
    pub prompt: Option<PathBuf>,
    pub invalid_prompt: Option<PathBuf>,
    /// Seconds to wait for a digit after the prompt ends.
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// How many more times the menu is offered after no or invalid input.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The queue for callers who never choose.
    pub default: String,
    /// Digit → queue name, or `menu:NAME` for a sub-menu.
    pub options: BTreeMap<String, String>,
}

fn default_timeout() -> u64 {
    5
}
fn default_retries() -> u32 {
    2
}

/// Where a digit leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Queue(String),
    Menu(String),
    /// "Press 1 for Anna": that agent, in the menu's default queue, kept for them for
    /// [`AGENT_FALLBACK_S`] before anyone in the queue may take the call.
    Agent(String),
}

/// How long a caller who asked for a named agent waits for them before the group.
pub const AGENT_FALLBACK_S: u64 = 30;

/// A validated menu with its audio loaded.
#[derive(Clone, Debug)]
pub struct Menu {
    pub name: String,
    pub prompt: PromptRef,
    /// The invalid-input prompt followed by the menu prompt again.
    pub retry_prompt: PromptRef,
    pub timeout: std::time::Duration,
    pub retries: u32,
    pub default: String,
    pub options: HashMap<char, Target>,
}

fn load(base: &Path, p: &Option<PathBuf>, builtin: fn() -> Vec<i16>) -> Result<Vec<i16>, String> {
    match p {
        None => Ok(builtin()),
        Some(p) => super::prompt_file::read_pcm(base, p),
    }
}

impl MenuToml {
    /// Checks targets against the known queues and menus and loads the prompts.
    pub(super) fn build(
        &self,
        base: &Path,
        queue_exists: impl Fn(&str) -> bool,
        menu_exists: impl Fn(&str) -> bool,
    ) -> Result<Menu, String> {
        let mut options = HashMap::new();
        for (digit, to) in &self.options {
            let mut chars = digit.chars();
            let (Some(d), None) = (chars.next(), chars.next()) else {
                return Err(format!("option '{digit}' must be one key: 0-9, *, #"));
            };
            if !(d.is_ascii_digit() || d == '*' || d == '#') {
                return Err(format!("option '{digit}' must be one key: 0-9, *, #"));
            }
            if let Some(agent) = to.strip_prefix("agent:") {
                if !crate::sip::header::is_token(agent) {
                    return Err(format!("option '{digit}' names a bad agent id '{agent}'"));
                }
                options.insert(d, Target::Agent(agent.to_string()));
                continue;
            }
            let target = match to.strip_prefix("menu:") {
                Some(m) if menu_exists(m) => Target::Menu(m.to_string()),
                Some(m) => return Err(format!("option '{digit}' leads to unknown menu '{m}'")),
                None if queue_exists(to) => Target::Queue(to.clone()),
                None => return Err(format!("option '{digit}' leads to unknown queue '{to}'")),
            };
            options.insert(d, target);
        }
        if !queue_exists(&self.default) {
            return Err(format!("default queue '{}' is unknown", self.default));
        }
        if self.timeout_s == 0 || self.timeout_s > 60 {
            return Err("timeout_s must be 1..=60".into());
        }
        let prompt = load(base, &self.prompt, default_menu)?;
        let mut retry = load(base, &self.invalid_prompt, default_invalid)?;
        retry.extend_from_slice(&prompt);
        Ok(Menu {
            name: self.name.clone(),
            prompt: PromptRef(Arc::new(Prompt::from_pcm(&prompt))),
            retry_prompt: PromptRef(Arc::new(Prompt::from_pcm(&retry))),
            timeout: std::time::Duration::from_secs(self.timeout_s),
            retries: self.retries,
            default: self.default.clone(),
            options,
        })
    }
}
