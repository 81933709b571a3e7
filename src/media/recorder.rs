//! Call recording, sans-IO: G.711 payloads from both legs are decoded and placed by arrival
//! time on two tracks, then mixed into one 8 kHz mono stream that the media task writes to a
//! WAV file as it goes (a long call never sits in memory).

use crate::sdp::Codec;
use std::time::{Duration, Instant};

const RATE: u64 = 8000;
/// Audio younger than this may still get its other side; it is mixed later.
const SETTLE: Duration = Duration::from_millis(300);

pub struct Recorder {
    codec: Codec,
    start: Instant,
    /// Caller and agent samples not yet mixed; index 0 is sample `base` of the recording.
    tracks: [Vec<i16>; 2],
    base: u64,
}

/// Which leg a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Caller = 0,
    Agent = 1,
}

impl Recorder {
    pub fn new(codec: Codec, start: Instant) -> Recorder {
        Recorder {
            codec,
            start,
            tracks: [Vec::new(), Vec::new()],
            base: 0,
        }
    }

    /// One packet's audio payload from `side`, arrived at `now`: it ends at the arrival time
    /// (or right after that side's previous packet, if later), so gaps become silence.
    pub fn feed(&mut self, side: Side, now: Instant, payload: &[u8]) {
        let t = &mut self.tracks[side as usize];
        let end = (now.saturating_duration_since(self.start).as_micros() as u64 * RATE / 1_000_000)
            .saturating_sub(self.base) as usize;
        let at = end.saturating_sub(payload.len()).max(t.len());
        t.resize(at, 0);
        let decode = match self.codec {
            Codec::Pcmu => super::g711::ulaw_decode,
            Codec::Pcma => super::g711::alaw_decode,
        };
        t.extend(payload.iter().map(|b| decode(*b)));
    }

    /// Mixed audio older than the settle time, removed from the buffers.
    pub fn take_ready(&mut self, now: Instant) -> Vec<i16> {
        let settled = now
            .saturating_duration_since(self.start)
            .saturating_sub(SETTLE)
            .as_micros() as u64
            * RATE
            / 1_000_000;
        self.take(settled.saturating_sub(self.base) as usize)
    }

    /// Everything left, mixed (the call ended).
    pub fn finish(&mut self) -> Vec<i16> {
        let n = self.tracks[0].len().max(self.tracks[1].len());
        self.take(n)
    }

    fn take(&mut self, n: usize) -> Vec<i16> {
        let get = |t: &Vec<i16>, i: usize| t.get(i).copied().unwrap_or(0) as i32;
        let out: Vec<i16> = (0..n)
            .map(|i| {
                (get(&self.tracks[0], i) + get(&self.tracks[1], i))
                    .clamp(i16::MIN as i32, i16::MAX as i32) as i16
            })
            .collect();
        for t in &mut self.tracks {
            t.drain(..n.min(t.len()));
        }
        self.base += n as u64;
        out
    }
}

/// The 44-byte header of an 8 kHz mono 16-bit PCM WAV file holding `samples` samples.
pub fn wav_header(samples: u32) -> [u8; 44] {
    let data = samples * 2;
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&(RATE as u32).to_le_bytes());
    h[28..32].copy_from_slice(&(RATE as u32 * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_are_mixed_in_time_and_gaps_are_silence() {
        let t0 = Instant::now();
        let mut r = Recorder::new(Codec::Pcmu, t0);
        let loud = super::super::g711::ulaw_encode(1000);
        // Caller: 20 ms at 20 ms. Agent: 20 ms at 20 ms and again at 80 ms (a 40 ms gap).
        r.feed(Side::Caller, t0 + Duration::from_millis(20), &[loud; 160]);
        r.feed(Side::Agent, t0 + Duration::from_millis(20), &[loud; 160]);
        r.feed(Side::Agent, t0 + Duration::from_millis(80), &[loud; 160]);
        let all = r.finish();
        assert_eq!(all.len(), 640, "80 ms of audio");
        let v = super::super::g711::ulaw_decode(loud) as i32;
        assert_eq!(all[0] as i32, 2 * v, "both sides at once add up");
        assert_eq!(all[200], 0, "the agent's gap is silence");
        assert_eq!(all[600] as i32, v);
    }

    #[test]
    fn only_settled_audio_is_handed_out_before_the_end() {
        let t0 = Instant::now();
        let mut r = Recorder::new(Codec::Pcma, t0);
        for i in 1..=50 {
            r.feed(
                Side::Caller,
                t0 + Duration::from_millis(20 * i),
                &[0xd5; 160],
            );
        }
        let first = r.take_ready(t0 + Duration::from_millis(1000));
        assert_eq!(first.len(), 5600, "up to 700 ms");
        let rest = r.finish();
        assert_eq!(first.len() + rest.len(), 8000);
    }

    #[test]
    fn the_wav_header_describes_8khz_mono_pcm() {
        let h = wav_header(8000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), 16000);
        assert_eq!(u32::from_le_bytes(h[24..28].try_into().unwrap()), 8000);
    }
}
