//! Prompts and hold music: 8 kHz mono 16-bit WAV files cut into 20 ms G.711 frames, plus the
//! default sounds we synthesise ourselves so `acd serve` needs no audio files.

use super::g711::{alaw_encode, ulaw_encode};
use super::rtp::FRAME_SAMPLES;
use crate::sdp::Codec;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PromptError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {what} (need RIFF/WAVE, PCM 16-bit, 8000 Hz, mono)")]
    Format { path: String, what: String },
}

/// Audio ready to stream: whole 20 ms frames in both G.711 laws.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub pcmu: Vec<[u8; FRAME_SAMPLES]>,
    pub pcma: Vec<[u8; FRAME_SAMPLES]>,
}

impl Prompt {
    /// Encodes PCM samples, padding the last frame with silence.
    pub fn from_pcm(samples: &[i16]) -> Prompt {
        let mut p = Prompt {
            pcmu: Vec::new(),
            pcma: Vec::new(),
        };
        for chunk in samples.chunks(FRAME_SAMPLES) {
            let mut u = [0xffu8; FRAME_SAMPLES];
            let mut a = [0xd5u8; FRAME_SAMPLES];
            for (i, &s) in chunk.iter().enumerate() {
                u[i] = ulaw_encode(s);
                a[i] = alaw_encode(s);
            }
            p.pcmu.push(u);
            p.pcma.push(a);
        }
        p
    }

    pub fn frames(&self, codec: Codec) -> &[[u8; FRAME_SAMPLES]] {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }

    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let bytes = std::fs::read(path).map_err(|source| PromptError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let pcm = read_wav(&bytes).map_err(|what| PromptError::Format {
            path: path.display().to_string(),
            what,
        })?;
        Ok(Prompt::from_pcm(&pcm))
    }
}

/// Reads an 8 kHz mono WAV to 16-bit samples: linear PCM (16-bit), or the G.711 WAVs
/// telephony prompts usually come as (A-law, µ-law), plain or in the WAVE_EXTENSIBLE header
/// newer tools write. A data chunk whose length runs past the file (a recorder that never
/// patched it) is read to the end. Other rates or channel counts are refused with what the
/// file is, so it can be converted (`sox in.wav -r 8000 -c 1 -b 16 out.wav`).
pub fn read_wav(b: &[u8]) -> Result<Vec<i16>, String> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut i = 12;
    let mut encoding: Option<Encoding> = None;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let end = i.saturating_add(8).saturating_add(len);
        if id == b"data" {
            let e = encoding.ok_or("data before fmt")?;
            let body = &b[i + 8..end.min(b.len())];
            return Ok(match e {
                Encoding::Pcm16 => body
                    .chunks_exact(2)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]))
                    .collect(),
                Encoding::Alaw => body.iter().map(|&x| super::g711::alaw_decode(x)).collect(),
                Encoding::Ulaw => body.iter().map(|&x| super::g711::ulaw_decode(x)).collect(),
            });
        }
        let body = b.get(i + 8..end).ok_or("truncated chunk")?;
        if id == b"fmt " {
            encoding = Some(fmt_chunk(body)?);
        }
        i = end + (len & 1);
    }
    Err("no data chunk".into())
}

/// Sample encodings a prompt may come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Pcm16,
    Alaw,
    Ulaw,
}

fn fmt_chunk(body: &[u8]) -> Result<Encoding, String> {
    if body.len() < 16 {
        return Err("short fmt chunk".into());
    }
    let mut format = u16::from_le_bytes([body[0], body[1]]);
    let channels = u16::from_le_bytes([body[2], body[3]]);
    let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let bits = u16::from_le_bytes([body[14], body[15]]);
    // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the subformat GUID.
    if format == 0xFFFE {
        let sub = body.get(24..26).ok_or("short WAVE_EXTENSIBLE fmt chunk")?;
        format = u16::from_le_bytes([sub[0], sub[1]]);
    }
    let e = match (format, bits) {
        (1, 16) => Encoding::Pcm16,
        (6, 8) => Encoding::Alaw,
        (7, 8) => Encoding::Ulaw,
        _ => {
            return Err(format!(
                "format {format} with {bits} bit samples (16-bit PCM, A-law or µ-law wanted)"
            ))
        }
    };
    if channels != 1 || rate != 8000 {
        return Err(format!(
            "{channels} channel(s) at {rate} Hz (8 kHz mono wanted)"
        ));
    }
    Ok(e)
}

/// Writes 8 kHz mono 16-bit PCM as WAV.
pub fn write_wav(samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut v = Vec::with_capacity(44 + data_len as usize);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

fn tone(out: &mut Vec<i16>, freqs: &[f32], ms: u32, amp: f32) {
    let n = (8 * ms) as usize;
    for i in 0..n {
        let t = i as f32 / 8000.0;
        // 10 ms fade in and out so notes do not click.
        let env = ((i.min(n - i) as f32) / 80.0).min(1.0);
        let v: f32 = freqs
            .iter()
            .map(|f| (2.0 * std::f32::consts::PI * f * t).sin())
            .sum::<f32>()
            / freqs.len().max(1) as f32;
        out.push((v * amp * env * 32767.0) as i16);
    }
}

/// A two-note chime played before hold music ("please hold").
pub fn default_welcome() -> Vec<i16> {
    let mut v = Vec::new();
    tone(&mut v, &[659.3, 1318.5], 250, 0.3);
    tone(&mut v, &[523.3, 1046.5], 400, 0.3);
    tone(&mut v, &[], 300, 0.0);
    v
}

/// Stands in for a recorded menu ("press 1 for …") until the operator configures one: three
/// rising beeps, so a caller and a test can tell the menu from hold music.
pub fn default_menu() -> Vec<i16> {
    let mut v = Vec::new();
    for f in [784.0, 988.0, 1175.0] {
        tone(&mut v, &[f], 180, 0.3);
        tone(&mut v, &[], 120, 0.0);
    }
    v
}

/// Stands in for "please rate this call from 1 to 5": five short rising beeps.
pub fn default_survey() -> Vec<i16> {
    let mut v = Vec::new();
    for f in [523.3, 587.3, 659.3, 698.5, 784.0] {
        tone(&mut v, &[f], 120, 0.3);
        tone(&mut v, &[], 80, 0.0);
    }
    v
}

/// "You are caller number N; the expected wait is M minutes", in tones: a two-note chime, then
/// each digit of N as that many short beeps (0: one long low beep), a pause, the chime again
/// and the digits of M. Replace with recordings by configuring prompts (later).
pub fn position_announcement(position: usize, minutes: u64) -> Vec<i16> {
    fn chime(v: &mut Vec<i16>) {
        tone(v, &[659.3], 150, 0.3);
        tone(v, &[880.0], 150, 0.3);
        tone(v, &[], 250, 0.0);
    }
    fn number(v: &mut Vec<i16>, n: u64) {
        for d in n.to_string().bytes().map(|b| b - b'0') {
            if d == 0 {
                tone(v, &[330.0], 400, 0.3);
            }
            for _ in 0..d {
                tone(v, &[1046.5], 90, 0.3);
                tone(v, &[], 90, 0.0);
            }
            tone(v, &[], 350, 0.0);
        }
    }
    let mut v = Vec::new();
    chime(&mut v);
    number(&mut v, position as u64);
    tone(&mut v, &[], 300, 0.0);
    chime(&mut v);
    number(&mut v, minutes);
    v
}

/// Stands in for "sorry, that is not an option": two low beeps.
pub fn default_invalid() -> Vec<i16> {
    let mut v = Vec::new();
    for _ in 0..2 {
        tone(&mut v, &[330.0], 200, 0.3);
        tone(&mut v, &[], 150, 0.0);
    }
    v
}

/// A calm 8-second arpeggio loop for callers waiting in queue.
pub fn default_hold_music() -> Vec<i16> {
    let mut v = Vec::new();
    let chords: [[f32; 3]; 4] = [
        [261.6, 329.6, 392.0],
        [220.0, 261.6, 329.6],
        [174.6, 220.0, 261.6],
        [196.0, 246.9, 293.7],
    ];
    for c in chords {
        for f in c {
            tone(&mut v, &[f, f * 2.0], 500, 0.2);
        }
        tone(&mut v, &c, 500, 0.15);
    }
    v
}

/// A loaded prompt, shared by the dialplan and the media tasks; equal when it is the same one.
#[derive(Clone, Debug)]
pub struct PromptRef(pub std::sync::Arc<Prompt>);

impl PartialEq for PromptRef {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PromptRef {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trip_and_frames() {
        let pcm = default_welcome();
        let back = read_wav(&write_wav(&pcm)).unwrap();
        assert_eq!(back, pcm);
        let p = Prompt::from_pcm(&pcm);
        assert_eq!(p.pcmu.len(), pcm.len().div_ceil(FRAME_SAMPLES));
        assert_eq!(default_hold_music().len(), 8 * 8000);
    }

    #[test]
    fn wrong_format_is_named() {
        let mut w = write_wav(&[0; 10]);
        w[24..28].copy_from_slice(&16000u32.to_le_bytes());
        assert!(read_wav(&w).unwrap_err().contains("16000 Hz"));
        assert!(read_wav(b"nope").is_err());
        let mut stereo = write_wav(&[0; 10]);
        stereo[22..24].copy_from_slice(&2u16.to_le_bytes());
        assert!(read_wav(&stereo).unwrap_err().contains("2 channel(s)"));
    }

    /// A G.711 WAV as telephony tools write it: `format` 6 (A-law) or 7 (µ-law), 8-bit,
    /// optionally inside a WAVE_EXTENSIBLE header, optionally with a data length never patched.
    fn g711_wav(format: u16, samples: &[u8], extensible: bool, data_len: u32) -> Vec<u8> {
        let mut fmt = Vec::new();
        let tag = if extensible { 0xFFFEu16 } else { format };
        fmt.extend_from_slice(&tag.to_le_bytes());
        fmt.extend_from_slice(&1u16.to_le_bytes());
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&1u16.to_le_bytes());
        fmt.extend_from_slice(&8u16.to_le_bytes());
        if extensible {
            fmt.extend_from_slice(&22u16.to_le_bytes());
            fmt.extend_from_slice(&8u16.to_le_bytes());
            fmt.extend_from_slice(&0u32.to_le_bytes());
            fmt.extend_from_slice(&format.to_le_bytes());
            fmt.extend_from_slice(&[0u8; 14]);
        }
        let mut w = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        w.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        w.extend_from_slice(&fmt);
        w.extend_from_slice(b"data");
        w.extend_from_slice(&data_len.to_le_bytes());
        w.extend_from_slice(samples);
        w
    }

    #[test]
    fn g711_and_extensible_wavs_are_read() {
        let pcm: Vec<i16> = (0..400).map(|i| ((i * 97) % 8000 - 4000) as i16).collect();
        let alaw: Vec<u8> = pcm
            .iter()
            .map(|&s| super::super::g711::alaw_encode(s))
            .collect();
        let ulaw: Vec<u8> = pcm
            .iter()
            .map(|&s| super::super::g711::ulaw_encode(s))
            .collect();
        let want_a: Vec<i16> = alaw
            .iter()
            .map(|&x| super::super::g711::alaw_decode(x))
            .collect();
        let want_u: Vec<i16> = ulaw
            .iter()
            .map(|&x| super::super::g711::ulaw_decode(x))
            .collect();
        let n = alaw.len() as u32;
        assert_eq!(read_wav(&g711_wav(6, &alaw, false, n)).unwrap(), want_a);
        assert_eq!(read_wav(&g711_wav(7, &ulaw, true, n)).unwrap(), want_u);
        // A recorder that never patched the data length: read to the end of the file.
        assert_eq!(
            read_wav(&g711_wav(7, &ulaw, false, u32::MAX)).unwrap(),
            want_u
        );
        // 8-bit linear PCM is not a telephony format we take.
        let e = read_wav(&g711_wav(1, &alaw, false, n)).unwrap_err();
        assert!(e.contains("format 1 with 8 bit"), "{e}");
    }
}
