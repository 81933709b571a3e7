//! G.711 μ-law and A-law (ITU-T G.711) conversion to and from 16-bit linear PCM.

use crate::sdp::Codec;
use std::sync::OnceLock;

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// Linear PCM → μ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - ((s as u32) << 17).leading_zeros().min(7)) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 as i32 | mantissa) as u8
}

/// μ-law → linear PCM.
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0f) as i32;
    let s = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 {
        -s as i16
    } else {
        s as i16
    }
}

/// Linear PCM → A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s >= 0 { 0xd5 } else { 0x55 };
    if s < 0 {
        s = -s - 1;
    }
    s = s.min(32767);
    let v = if s < 256 {
        s >> 4
    } else {
        let exp = 31 - (s as u32).leading_zeros() as i32 - 7; // 1..=7
        (exp << 4) | ((s >> (exp + 3)) & 0x0f)
    };
    (v ^ sign) as u8
}

/// A-law → linear PCM.
pub fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let sign = a & 0x80;
    let exp = ((a >> 4) & 0x07) as i32;
    let mant = (a & 0x0f) as i32;
    let s = if exp == 0 {
        (mant << 4) + 8
    } else {
        ((mant << 4) + 0x108) << (exp - 1)
    };
    if sign != 0 {
        s as i16
    } else {
        -s as i16
    }
}

/// The byte-for-byte table that turns `from` into `to` (`None` when they are the same law).
/// Both laws code the same 8 kHz samples, one byte each, so a leg that speaks the other law
/// costs one lookup per byte: the table goes through the linear value (G.711 §A.1), built once.
pub fn transcode_table(from: Codec, to: Codec) -> Option<&'static [u8; 256]> {
    static TABLES: OnceLock<([u8; 256], [u8; 256])> = OnceLock::new();
    if from == to {
        return None;
    }
    let (a_to_u, u_to_a) = TABLES.get_or_init(|| {
        let mut a_to_u = [0u8; 256];
        let mut u_to_a = [0u8; 256];
        for b in 0..=255u8 {
            a_to_u[b as usize] = ulaw_encode(alaw_decode(b));
            u_to_a[b as usize] = alaw_encode(ulaw_decode(b));
        }
        (a_to_u, u_to_a)
    });
    Some(match from {
        Codec::Pcma => a_to_u,
        Codec::Pcmu => u_to_a,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcoding_keeps_the_sample_value_within_one_step_of_either_law() {
        assert!(transcode_table(Codec::Pcmu, Codec::Pcmu).is_none());
        let a2u = transcode_table(Codec::Pcma, Codec::Pcmu).unwrap();
        let u2a = transcode_table(Codec::Pcmu, Codec::Pcma).unwrap();
        for b in 0..=255u8 {
            let (a, u) = (alaw_decode(b) as i32, ulaw_decode(a2u[b as usize]) as i32);
            assert!((a - u).abs() <= a.abs() / 16 + 16, "A {b:#04x}: {a} -> {u}");
            let (u, a) = (ulaw_decode(b) as i32, alaw_decode(u2a[b as usize]) as i32);
            assert!((a - u).abs() <= u.abs() / 16 + 16, "u {b:#04x}: {u} -> {a}");
        }
        // Silence stays (next to) silence, and there and back is stable after one trip.
        assert!(ulaw_decode(a2u[0xd5]).abs() <= 8);
        assert!(alaw_decode(u2a[0xff]).abs() <= 8);
        for b in 0..=255u8 {
            let once = a2u[u2a[b as usize] as usize];
            assert_eq!(a2u[u2a[once as usize] as usize], once);
        }
    }

    #[test]
    fn round_trips_within_quantisation_error() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            let u = ulaw_decode(ulaw_encode(s)) as i32;
            let a = alaw_decode(alaw_encode(s)) as i32;
            let tol = (s as i32).abs() / 16 + 16;
            assert!((u - s as i32).abs() <= tol, "ulaw {s} -> {u}");
            assert!((a - s as i32).abs() <= tol, "alaw {s} -> {a}");
        }
    }

    #[test]
    fn silence_codes() {
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(alaw_encode(0), 0xd5);
    }
}
