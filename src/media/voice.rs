//! Spoken position announcements from a folder of recorded words, the way Asterisk builds
//! "you are caller number three" from `queue-*` and `digits/` sounds. Any language works: record
//! the same file names in it. Every word is checked when the dialplan loads, so a missing file
//! is an error naming it, never a silent gap in a call.

use super::prompt::read_wav;
use std::collections::HashMap;
use std::path::Path;

/// Phrases, then number words: 0-20, the tens, and "hundred".
const PHRASES: [&str; 4] = ["you-are-caller", "expected-wait", "minute", "minutes"];
const NUMBERS: [&str; 29] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "30", "40", "50", "60", "70", "80", "90", "hundred",
];

/// Silence between the position and the wait, in samples at 8 kHz (300 ms).
const GAP: usize = 2_400;

/// The recorded words of one announcement voice.
#[derive(Debug, PartialEq, Eq)]
pub struct Voice {
    words: HashMap<&'static str, Vec<i16>>,
}

impl Voice {
    /// Reads `<word>.wav` (8 kHz mono 16-bit) for every word from `dir`.
    pub fn load(dir: &Path) -> Result<Voice, String> {
        let mut words = HashMap::new();
        for w in PHRASES.iter().chain(NUMBERS.iter()) {
            let path = dir.join(format!("{w}.wav"));
            let pcm = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| read_wav(&b))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            words.insert(*w, pcm);
        }
        Ok(Voice { words })
    }

    fn say(&self, word: &str, out: &mut Vec<i16>) {
        if let Some(pcm) = self.words.get(word) {
            out.extend_from_slice(pcm);
        }
    }

    /// Speaks `n` (0-999; more is said as 999) in words: "forty two", "three hundred one".
    fn number(&self, n: u64, out: &mut Vec<i16>) {
        let n = n.min(999);
        if n >= 100 {
            self.say(&(n / 100).to_string(), out);
            self.say("hundred", out);
            if n.is_multiple_of(100) {
                return;
            }
        }
        let rest = n % 100;
        if rest <= 20 {
            if rest > 0 || n < 100 {
                self.say(&rest.to_string(), out);
            }
            return;
        }
        self.say(&(rest / 10 * 10).to_string(), out);
        if !rest.is_multiple_of(10) {
            self.say(&(rest % 10).to_string(), out);
        }
    }

    /// "You are caller number N. Your expected wait is about M minutes." The wait is left out
    /// when it is under a minute.
    pub fn position_announcement(&self, position: usize, minutes: u64) -> Vec<i16> {
        let mut v = Vec::new();
        self.say("you-are-caller", &mut v);
        self.number(position as u64, &mut v);
        if minutes > 0 {
            v.extend(std::iter::repeat_n(0, GAP));
            self.say("expected-wait", &mut v);
            self.number(minutes, &mut v);
            self.say(if minutes == 1 { "minute" } else { "minutes" }, &mut v);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voice whose every word is one sample holding the word's index, so the spoken
    /// sequence can be read back.
    fn marked() -> (Voice, Vec<&'static str>) {
        let all: Vec<&'static str> = PHRASES.iter().chain(NUMBERS.iter()).copied().collect();
        let words = all
            .iter()
            .enumerate()
            .map(|(i, w)| (*w, vec![i as i16 + 1]))
            .collect();
        (Voice { words }, all)
    }

    fn spoken(v: &Voice, all: &[&'static str], pcm: Vec<i16>) -> Vec<&'static str> {
        let _ = v;
        pcm.into_iter()
            .filter(|s| *s > 0)
            .map(|s| all[s as usize - 1])
            .collect()
    }

    #[test]
    fn numbers_are_spoken_as_words() {
        let (v, all) = marked();
        let say = |n: u64| {
            let mut out = Vec::new();
            v.number(n, &mut out);
            spoken(&v, &all, out)
        };
        assert_eq!(say(0), ["0"]);
        assert_eq!(say(13), ["13"]);
        assert_eq!(say(40), ["40"]);
        assert_eq!(say(42), ["40", "2"]);
        assert_eq!(say(300), ["3", "hundred"]);
        assert_eq!(say(301), ["3", "hundred", "1"]);
        assert_eq!(say(999), ["9", "hundred", "90", "9"]);
        assert_eq!(say(5000), say(999));
    }

    #[test]
    fn the_announcement_says_position_then_wait_with_the_right_plural() {
        let (v, all) = marked();
        let a = v.position_announcement(3, 1);
        assert_eq!(
            spoken(&v, &all, a),
            ["you-are-caller", "3", "expected-wait", "1", "minute"]
        );
        let a = v.position_announcement(21, 12);
        assert_eq!(
            spoken(&v, &all, a),
            [
                "you-are-caller",
                "20",
                "1",
                "expected-wait",
                "12",
                "minutes"
            ]
        );
        let a = v.position_announcement(1, 0);
        assert_eq!(spoken(&v, &all, a), ["you-are-caller", "1"]);
    }

    #[test]
    fn a_missing_word_is_named() {
        let dir = std::env::temp_dir().join(format!("acd-voice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = Voice::load(&dir).unwrap_err();
        assert!(e.contains("you-are-caller.wav"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_shipped_english_voice_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en");
        let v = Voice::load(&dir).unwrap();
        assert!(
            v.position_announcement(2, 3).len() > 8_000,
            "seconds of speech"
        );
    }
}
