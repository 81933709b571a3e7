//! What a phone heard: the dominant frequency and purity of a WAV recording's tail, so a test
//! checks audio as a listener would, not packet counts.

use std::path::Path;

/// The last `seconds` of the WAV at `wav`: the dominant frequency (Hz, from zero crossings) and
/// how pure a sine it is there (0–1: the Goertzel power at that frequency over all the power).
/// `None` for silence or no file. A tone relayed in the wrong G.711 law keeps its zero
/// crossings but loses its purity; a mix with prompts loses both.
pub fn heard_in(wav: &Path, seconds: f64) -> Option<(f64, f64)> {
    let (samples, rate) = read(wav)?;
    let n = ((seconds * rate) as usize).min(samples.len());
    analyse(&samples[samples.len() - n..], rate)
}

/// The cleanest `seconds`-long stretch anywhere in the recording (windows a quarter second
/// apart): for a phone whose recording ends with the hang-up, digits or silence.
pub fn heard_best(wav: &Path, seconds: f64) -> Option<(f64, f64)> {
    let (samples, rate) = read(wav)?;
    let n = ((seconds * rate) as usize).min(samples.len());
    let step = (rate / 4.0) as usize;
    (0..=samples.len() - n)
        .step_by(step.max(1))
        .filter_map(|i| analyse(&samples[i..i + n], rate))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// The samples (first channel) and rate of a 16-bit PCM WAV.
fn read(wav: &Path) -> Option<(Vec<f64>, f64)> {
    let bytes = std::fs::read(wav).ok()?;
    // RIFF header: channels at 22, rate at 24; samples after the "data" chunk.
    let channels = u16::from_le_bytes([*bytes.get(22)?, bytes[23]]) as usize;
    let rate = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]) as f64;
    let data = bytes.windows(4).position(|w| w == b"data")? + 8;
    let samples = bytes
        .get(data..)?
        .chunks_exact(2 * channels.max(1))
        .map(|c| i16::from_le_bytes([c[0], c[1]]) as f64)
        .collect();
    Some((samples, rate))
}

/// Dominant frequency and purity of `tail`; `None` for silence.
fn analyse(tail: &[f64], rate: f64) -> Option<(f64, f64)> {
    let n = tail.len();
    if n == 0 {
        return None;
    }
    let energy: f64 = tail.iter().map(|x| x * x).sum();
    if tail.iter().all(|x| x.abs() < 500.0) {
        return None;
    }
    let crossings = tail
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let hz = crossings as f64 / 2.0 / (n as f64 / rate);
    let goertzel = |f: f64| {
        let coeff = 2.0 * (2.0 * std::f64::consts::PI * f / rate).cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for x in tail {
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2.0 / (n as f64 * energy)
    };
    let purity = (-40..=40)
        .map(|i| goertzel(hz + i as f64 * 0.25))
        .fold(0.0, f64::max);
    Some((hz, purity))
}

/// [`heard_in`] once the file has audio (a phone finishes its recording after the call),
/// waiting up to `limit`.
pub async fn heard_when_written(
    wav: &Path,
    seconds: f64,
    limit: std::time::Duration,
) -> Option<(f64, f64)> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let got = heard_in(wav, seconds);
        if got.is_some() || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
