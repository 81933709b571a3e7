//! The post-call survey: when the agent hangs up first on a call of a surveyed queue, the caller
//! hears "rate us 1 to 5" and answers with a key. A low rating tags the caller `complaint`, which
//! a rule can route to management next time.

use crate::media::prompt::PromptRef;
use crate::media::prompt::{default_survey, Prompt};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SurveyToml {
    #[serde(default)]
    enabled: bool,
    /// Queues whose calls are surveyed; empty: all.
    #[serde(default)]
    queues: Vec<String>,
    /// "Please rate this call from 1 to 5" (8 kHz mono WAV); built-in tones if unset.
    prompt: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    timeout_s: u64,
    /// A rating at or below this tags the caller `complaint` (0: never).
    #[serde(default = "default_threshold")]
    complaint_at_or_below: u8,
}

fn default_timeout() -> u64 {
    8
}

fn default_threshold() -> u8 {
    2
}

/// A validated survey.
#[derive(Clone, Debug)]
pub struct Survey {
    pub queues: Vec<String>,
    pub prompt: PromptRef,
    pub timeout: Duration,
    pub complaint_at_or_below: u8,
}

impl Survey {
    pub fn covers(&self, queue: &str) -> bool {
        self.queues.is_empty() || self.queues.iter().any(|q| q == queue)
    }
}

impl SurveyToml {
    /// `None` when disabled.
    pub(super) fn build(
        &self,
        base: &Path,
        queue_exists: impl Fn(&str) -> bool,
    ) -> Result<Option<Survey>, String> {
        if !self.enabled {
            return Ok(None);
        }
        if let Some(q) = self.queues.iter().find(|q| !queue_exists(q)) {
            return Err(format!("survey: unknown queue '{q}'"));
        }
        if self.timeout_s == 0 || self.timeout_s > 60 {
            return Err("survey: timeout_s must be 1..=60".into());
        }
        if self.complaint_at_or_below > 5 {
            return Err("survey: complaint_at_or_below must be 0..=5".into());
        }
        let pcm = match &self.prompt {
            None => default_survey(),
            Some(p) => super::prompt_file::read_pcm(base, p).map_err(|e| format!("survey: {e}"))?,
        };
        Ok(Some(Survey {
            queues: self.queues.clone(),
            prompt: PromptRef(Arc::new(Prompt::from_pcm(&pcm))),
            timeout: Duration::from_secs(self.timeout_s),
            complaint_at_or_below: self.complaint_at_or_below,
        }))
    }
}
