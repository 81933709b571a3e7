//! SRTP (RFC 3711) with the one suite every SDES phone offers, `AES_CM_128_HMAC_SHA1_80`:
//! AES-128 in counter mode, HMAC-SHA1 authentication truncated to 80 bits, keys from SDP
//! `a=crypto` lines (RFC 4568). Sans-IO and allocation-free per packet.
//!
//! One [`Srtp`] context serves one direction of one leg (RFC 3711 §3.2.3: a context per
//! direction): `unprotect` for what a peer sends us, `protect` for what we send it. Packets
//! failing authentication or replayed are refused before anything else looks at them, so a
//! stranger spraying the port cannot even take part in address learning.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use thiserror::Error;

/// The crypto suite name in `a=crypto` (RFC 4568 §6.2).
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Bytes of authentication tag appended to each packet.
pub const TAG_LEN: usize = 10;
/// Packets older than this many behind the newest are refused as replays (RFC 3711 §3.3.2).
const REPLAY_WINDOW: u64 = 64;
/// SSRCs one receiving context tracks (a leg normally has one; a re-INVITE may add one).
const MAX_STREAMS: usize = 4;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SrtpError {
    #[error("not an RTP packet (too short or bad header)")]
    NotRtp,
    #[error("authentication failed")]
    Auth,
    #[error("replayed or too old")]
    Replay,
    #[error("key parameter is not base64 of a 16-byte key and a 14-byte salt")]
    BadKey,
}

/// A master key and salt, as carried in `inline:` (RFC 4568 §6.1).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    pub key: [u8; 16],
    pub salt: [u8; 14],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key, for what we send.
    pub fn random() -> MasterKey {
        MasterKey {
            key: rand::random(),
            salt: rand::random(),
        }
    }

    /// Reads the key-params of an `a=crypto` line: `inline:<base64>[|lifetime][|MKI:len]`.
    /// Lifetime and MKI are tolerated only in their trivial forms (no MKI in our packets).
    pub fn from_inline(params: &str) -> Result<MasterKey, SrtpError> {
        use base64::Engine;
        let b64 = params
            .trim()
            .strip_prefix("inline:")
            .ok_or(SrtpError::BadKey)?
            .split('|')
            .next()
            .unwrap_or("");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SrtpError::BadKey)?;
        if raw.len() != 30 {
            return Err(SrtpError::BadKey);
        }
        let mut k = MasterKey {
            key: [0; 16],
            salt: [0; 14],
        };
        k.key.copy_from_slice(&raw[..16]);
        k.salt.copy_from_slice(&raw[16..]);
        Ok(k)
    }

    /// `inline:<base64 key‖salt>`.
    pub fn to_inline(&self) -> String {
        use base64::Engine;
        let mut raw = [0u8; 30];
        raw[..16].copy_from_slice(&self.key);
        raw[16..].copy_from_slice(&self.salt);
        format!(
            "inline:{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Both keys of one SRTP leg: the peer's (from its SDP: what it sends with, so what we
/// unprotect with) and ours (in our SDP: what we protect with).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrtpKeys {
    pub theirs: MasterKey,
    pub ours: MasterKey,
}

/// Session keys (RFC 3711 §4.3, key derivation rate 0).
#[derive(Clone)]
struct SessionKeys {
    cipher: [u8; 16],
    salt: [u8; 14],
    auth: Hmac<Sha1>,
}

fn derive(master: &MasterKey, label: u8, out: &mut [u8]) {
    // x = label‖index DIV kdr (all zero) XORed into the salt's low 56 bits, times 2^16.
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&master.salt);
    iv[7] ^= label;
    out.fill(0);
    Aes128Ctr::new(&master.key.into(), &iv.into()).apply_keystream(out);
}

impl SessionKeys {
    fn new(master: &MasterKey) -> SessionKeys {
        let (mut cipher, mut auth, mut salt) = ([0u8; 16], [0u8; 20], [0u8; 14]);
        derive(master, 0, &mut cipher);
        derive(master, 1, &mut auth);
        derive(master, 2, &mut salt);
        SessionKeys {
            cipher,
            salt,
            // HMAC takes keys of any length, so this cannot fail.
            auth: <Hmac<Sha1> as Mac>::new_from_slice(&auth).unwrap_or_else(|_| unreachable!()),
        }
    }

    fn crypt(&self, ssrc: u32, index: u64, payload: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        Aes128Ctr::new(&self.cipher.into(), &iv.into()).apply_keystream(payload);
    }

    fn tag(&self, authenticated: &[u8], roc: u32) -> [u8; TAG_LEN] {
        let mut mac = self.auth.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&full[..TAG_LEN]);
        t
    }
}

/// Where an RTP packet's payload starts (after CSRCs and a header extension), its SSRC and
/// sequence number.
fn rtp_header(pkt: &[u8]) -> Option<(usize, u32, u16)> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(pkt[0] & 0x0f);
    let mut len = 12 + 4 * cc;
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > pkt.len() {
        return None;
    }
    let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
    let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
    Some((len, ssrc, seq))
}

/// What we know of one SSRC's stream: its rollover counter and the newest index seen, with a
/// bitmap of the `REPLAY_WINDOW` before it.
#[derive(Clone, Copy, Debug)]
struct Stream {
    ssrc: u32,
    roc: u32,
    last_seq: u16,
    /// Newest packet index accepted (sending: sent).
    newest: u64,
    window: u64,
}

impl Stream {
    fn new(ssrc: u32, seq: u16) -> Stream {
        Stream {
            ssrc,
            roc: 0,
            last_seq: seq,
            newest: u64::from(seq),
            window: 0,
        }
    }

    /// RFC 3711 §3.3.1: the index of `seq`, guessing whether the counter rolled.
    fn estimate(&self, seq: u16) -> u64 {
        let (s_l, seq32) = (i64::from(self.last_seq), i64::from(seq));
        let roc = i64::from(self.roc);
        let v = if s_l < 32_768 {
            if seq32 - s_l > 32_768 {
                roc - 1
            } else {
                roc
            }
        } else if s_l - 32_768 > seq32 {
            roc + 1
        } else {
            roc
        };
        ((v.max(0) as u64) << 16) | u64::from(seq)
    }

    fn seen(&self, index: u64) -> bool {
        if index > self.newest {
            return false;
        }
        let behind = self.newest - index;
        behind >= REPLAY_WINDOW || self.window & (1 << behind) != 0
    }

    fn accept(&mut self, index: u64) {
        if index > self.newest {
            let ahead = index - self.newest;
            self.window = if ahead >= REPLAY_WINDOW {
                0
            } else {
                self.window << ahead
            };
            self.window |= 1;
            self.newest = index;
            self.roc = (index >> 16) as u32;
            self.last_seq = index as u16;
        } else {
            self.window |= 1 << (self.newest - index);
        }
    }
}

/// One direction of one leg.
pub struct Srtp {
    keys: SessionKeys,
    streams: Vec<Stream>,
}

impl Srtp {
    pub fn new(master: &MasterKey) -> Srtp {
        Srtp {
            keys: SessionKeys::new(master),
            streams: Vec::new(),
        }
    }

    fn stream(&mut self, ssrc: u32, seq: u16) -> &mut Stream {
        let i = match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => i,
            None => {
                if self.streams.len() >= MAX_STREAMS {
                    self.streams.remove(0);
                }
                // An empty window: the first packet of a stream is new whatever its number.
                self.streams.push(Stream::new(ssrc, seq));
                self.streams.len() - 1
            }
        };
        &mut self.streams[i]
    }

    /// Encrypts and authenticates the RTP packet in `buf[..len]` in place; returns the SRTP
    /// length (`len + TAG_LEN`). `buf` must have room for the tag.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if buf.len() < len + TAG_LEN {
            return Err(SrtpError::NotRtp);
        }
        let (head, ssrc, seq) = rtp_header(&buf[..len]).ok_or(SrtpError::NotRtp)?;
        let s = self.stream(ssrc, seq);
        // A sender's own counter: it rolls when the sequence number wraps.
        let index = if seq < s.last_seq && s.last_seq - seq > 32_768 {
            (u64::from(s.roc + 1) << 16) | u64::from(seq)
        } else {
            (u64::from(s.roc) << 16) | u64::from(seq)
        };
        if index >> 16 > u64::from(s.roc) {
            s.roc += 1;
        }
        s.last_seq = seq;
        let roc = (index >> 16) as u32;
        self.keys.crypt(ssrc, index, &mut buf[head..len]);
        let tag = self.keys.tag(&buf[..len], roc);
        buf[len..len + TAG_LEN].copy_from_slice(&tag);
        Ok(len + TAG_LEN)
    }

    /// Checks and decrypts the SRTP packet `buf` in place; returns the RTP length (without the
    /// tag). Nothing is changed when it is refused.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        if buf.len() < 12 + TAG_LEN {
            return Err(SrtpError::NotRtp);
        }
        let len = buf.len() - TAG_LEN;
        let (head, ssrc, seq) = rtp_header(&buf[..len]).ok_or(SrtpError::NotRtp)?;
        // A stream's state is created only once a packet of it authenticates: a stranger's
        // made-up SSRCs can neither evict a real stream nor reset its counters.
        let known = self.streams.iter().position(|s| s.ssrc == ssrc);
        let mut stream = known.map_or_else(|| Stream::new(ssrc, seq), |i| self.streams[i]);
        let index = stream.estimate(seq);
        if stream.seen(index) {
            return Err(SrtpError::Replay);
        }
        let tag = self.keys.tag(&buf[..len], (index >> 16) as u32);
        if !crate::sip::auth::constant_eq(&tag, &buf[len..]) {
            return Err(SrtpError::Auth);
        }
        stream.accept(index);
        match known {
            Some(i) => self.streams[i] = stream,
            None => {
                if self.streams.len() >= MAX_STREAMS {
                    self.streams.remove(0);
                }
                self.streams.push(stream);
            }
        }
        self.keys.crypt(ssrc, index, &mut buf[head..len]);
        Ok(len)
    }
}

#[cfg(test)]
#[path = "srtp_tests.rs"]
mod tests;
