//! Prompts named in the dialplan: WAV files relative to the dialplan's folder, read and checked
//! when the plan loads so a bad file is an error with a line number, never a silent call.

use crate::media::prompt::PromptRef;
use crate::media::prompt::{read_wav, Prompt};
use std::path::Path;
use std::sync::Arc;

/// The samples of the WAV at `p` (relative to `base`); the error names the file.
pub(super) fn read_pcm(base: &Path, p: &Path) -> Result<Vec<i16>, String> {
    let path = base.join(p); // an absolute `p` replaces `base`
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    read_wav(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The WAV at `p`, ready to play.
pub(super) fn load(base: &Path, p: &Path) -> Result<PromptRef, String> {
    Ok(PromptRef(Arc::new(Prompt::from_pcm(&read_pcm(base, p)?))))
}
