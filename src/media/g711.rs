//! G.711 μ-law and A-law (ITU-T G.711) conversion to and from 16-bit linear PCM.

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

#[cfg(test)]
mod tests {
    use super::*;

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
