//! SDP offer/answer (RFC 3264) for one audio stream: PCMU, PCMA and telephone-event, over RTP
//! (`RTP/AVP`) or SRTP with SDES keys (`RTP/SAVP` + `a=crypto`, RFC 4568).
//!
//! We accept the offerer's first codec we support (their preference order), keep their
//! telephone-event payload type, and reject other streams with port 0 in the same m-line order.

use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("no audio stream")]
    NoAudio,
    #[error("no connection address for the audio stream")]
    NoConnection,
    #[error("no common codec (we take PCMU and PCMA)")]
    NoCommonCodec,
    #[error("malformed SDP line: {0}")]
    Malformed(String),
    #[error("SRTP offered without a crypto line we take (AES_CM_128_HMAC_SHA1_80, inline key)")]
    NoCommonCrypto,
}

/// Media direction attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// One m= line as offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaLine {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub rtpmap: Vec<(u8, String)>,
    pub conn: Option<IpAddr>,
    pub direction: Direction,
    /// `a=crypto` lines: tag, suite, key parameters.
    pub crypto: Vec<(u32, String, String)>,
}

impl MediaLine {
    fn is_secure(&self) -> bool {
        self.proto.starts_with("RTP/SAVP")
    }

    /// An RTP audio stream we can take: plain or SRTP profile.
    fn is_rtp_audio(&self) -> bool {
        self.kind == "audio"
            && self.port != 0
            && (self.proto.starts_with("RTP/AVP") || self.is_secure())
    }
}

/// The peer's SRTP key for a stream (what it sends with) and the tag to answer under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub key: crate::media::srtp::MasterKey,
}

/// The parts of a session description we act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp {
    pub conn: Option<IpAddr>,
    pub media: Vec<MediaLine>,
}

/// G.711 codecs we terminate and relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    /// `self` first, then the other law: what we offer a phone so that it can take the
    /// caller's codec, or the other one and be transcoded.
    pub fn preferred(self) -> [Codec; 2] {
        match self {
            Codec::Pcmu => [Codec::Pcmu, Codec::Pcma],
            Codec::Pcma => [Codec::Pcma, Codec::Pcmu],
        }
    }

    pub fn pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

/// The negotiated audio stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub remote: SocketAddr,
    pub codec: Codec,
    pub codec_pt: u8,
    /// RFC 4733 payload type, if both sides do it.
    pub dtmf_pt: Option<u8>,
    pub direction: Direction,
    /// SRTP: the peer's key (none: plain RTP).
    pub srtp: Option<Crypto>,
}

impl Sdp {
    /// Parses an SDP body; a multipart body is searched for its application/sdp part.
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let text = match text.find("v=0") {
            Some(i) => &text[i..],
            None => text,
        };
        let mut sdp = Sdp {
            conn: None,
            media: Vec::new(),
        };
        for line in text.lines() {
            let line = line.trim_end();
            if line.starts_with("--") {
                break; // end of the SDP part inside multipart
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "c" => {
                    let addr = parse_conn(v)?;
                    match sdp.media.last_mut() {
                        Some(m) => m.conn = Some(addr),
                        None => sdp.conn = Some(addr),
                    }
                }
                "m" => {
                    let mut it = v.split_ascii_whitespace();
                    let kind = it.next().unwrap_or("").to_string();
                    let port = it
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| SdpError::Malformed(line.to_string()))?;
                    let proto = it.next().unwrap_or("").to_string();
                    sdp.media.push(MediaLine {
                        kind,
                        port,
                        proto,
                        formats: it.map(str::to_string).collect(),
                        rtpmap: Vec::new(),
                        conn: None,
                        direction: Direction::SendRecv,
                        crypto: Vec::new(),
                    });
                }
                "a" => {
                    let Some(m) = sdp.media.last_mut() else {
                        continue;
                    };
                    if let Some(c) = v.strip_prefix("crypto:") {
                        let mut it = c.split_ascii_whitespace();
                        if let (Some(Ok(tag)), Some(suite), Some(params)) =
                            (it.next().map(str::parse), it.next(), it.next())
                        {
                            m.crypto.push((tag, suite.to_string(), params.to_string()));
                        }
                    } else if let Some(rm) = v.strip_prefix("rtpmap:") {
                        if let Some((pt, enc)) = rm.split_once(' ') {
                            if let Ok(pt) = pt.parse() {
                                m.rtpmap.push((pt, enc.to_string()));
                            }
                        }
                    } else {
                        m.direction = match v {
                            "sendonly" => Direction::SendOnly,
                            "recvonly" => Direction::RecvOnly,
                            "inactive" => Direction::Inactive,
                            "sendrecv" => Direction::SendRecv,
                            _ => m.direction,
                        };
                    }
                }
                _ => {}
            }
        }
        Ok(sdp)
    }

    /// The first usable audio stream and the codec we pick from it.
    pub fn negotiate(&self) -> Result<Negotiated, SdpError> {
        let m = self
            .media
            .iter()
            .find(|m| m.is_rtp_audio())
            .ok_or(SdpError::NoAudio)?;
        let srtp = if m.is_secure() {
            let c = m
                .crypto
                .iter()
                .filter(|(_, suite, _)| suite == crate::media::srtp::SUITE)
                .find_map(|(tag, _, params)| {
                    crate::media::srtp::MasterKey::from_inline(params)
                        .ok()
                        .map(|key| Crypto { tag: *tag, key })
                });
            Some(c.ok_or(SdpError::NoCommonCrypto)?)
        } else {
            None
        };
        let ip = m.conn.or(self.conn).ok_or(SdpError::NoConnection)?;
        let name_of = |pt: u8| -> Option<String> {
            m.rtpmap
                .iter()
                .find(|(p, _)| *p == pt)
                .map(|(_, e)| e.split('/').next().unwrap_or("").to_ascii_uppercase())
        };
        // The clock rate an rtpmap names (`telephone-event/16000`), if any.
        let rate_of = |pt: u8| -> Option<u32> {
            m.rtpmap
                .iter()
                .find(|(p, _)| *p == pt)
                .and_then(|(_, e)| e.split('/').nth(1))
                .and_then(|r| r.trim().parse().ok())
        };
        let mut codec = None;
        let mut dtmf = None;
        for f in &m.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let name = name_of(pt);
            let c = match (pt, name.as_deref()) {
                (_, Some("PCMU")) | (0, None) => Some(Codec::Pcmu),
                (_, Some("PCMA")) | (8, None) => Some(Codec::Pcma),
                // RFC 4733 §7.1.1: events run on the clock of the audio they go with, 8000 Hz
                // for G.711; phones offer one per clock rate (pjsua2: 16000 first, 8000 next).
                (_, Some("TELEPHONE-EVENT")) if rate_of(pt).is_none_or(|r| r == 8000) => {
                    dtmf.get_or_insert(pt);
                    None
                }
                _ => None,
            };
            if let (None, Some(c)) = (codec, c) {
                codec = Some((c, pt));
            }
        }
        let (codec, codec_pt) = codec.ok_or(SdpError::NoCommonCodec)?;
        Ok(Negotiated {
            remote: SocketAddr::new(ip, m.port),
            codec,
            codec_pt,
            dtmf_pt: dtmf,
            direction: m.direction,
            srtp,
        })
    }
}

fn parse_conn(v: &str) -> Result<IpAddr, SdpError> {
    let mut it = v.split_ascii_whitespace();
    let (_, _, addr) = (it.next(), it.next(), it.next());
    addr.and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| SdpError::Malformed(format!("c={v}")))
}

/// Our `o=` session id and version on one leg (RFC 4566 §5.2, RFC 3264 §8): the id is random
/// per leg so two legs of one call (or two calls) never share an origin, and the version goes
/// up by one with every new offer or answer we send on that leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub session: u64,
    pub version: u64,
}

impl Origin {
    /// A fresh origin: a random 63-bit session id (fits the NTP-style decimal peers expect),
    /// version 1.
    pub fn new() -> Origin {
        use rand::Rng;
        Origin {
            session: rand::thread_rng().gen::<u64>() >> 1,
            version: 1,
        }
    }

    /// Bump the version for a new SDP on this leg and return it.
    pub fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// The origin of an SDP body (ours, read back from a saved INVITE after a restart).
    pub fn of(body: &[u8]) -> Option<Origin> {
        let text = std::str::from_utf8(body).ok()?;
        let line = text.lines().find_map(|l| l.strip_prefix("o="))?;
        let mut it = line.split_ascii_whitespace().skip(1);
        Some(Origin {
            session: it.next()?.parse().ok()?,
            version: it.next()?.parse().ok()?,
        })
    }
}

impl Default for Origin {
    fn default() -> Self {
        Origin::new()
    }
}

/// What we put in our own SDP.
#[derive(Clone, Copy, Debug)]
pub struct LocalMedia {
    pub ip: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub version: u64,
    /// Our SRTP key for this stream (none: plain RTP).
    pub srtp: Option<crate::media::srtp::MasterKey>,
}

/// `RTP/AVP`, or `RTP/SAVP` when we have a key.
fn profile(local: &LocalMedia) -> &'static str {
    if local.srtp.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    }
}

/// Our `a=crypto` line under `tag`, if we encrypt.
fn crypto_line(local: &LocalMedia, tag: u32) -> String {
    local
        .srtp
        .map(|k| {
            format!(
                "a=crypto:{tag} {} {}\r\n",
                crate::media::srtp::SUITE,
                k.to_inline()
            )
        })
        .unwrap_or_default()
}

/// Our offer: `codecs` in our order of preference (the first is the one we want, e.g. the
/// caller's, so no transcoding is needed when the phone takes it), and telephone-event.
pub fn offer(local: &LocalMedia, codecs: &[Codec], dtmf_pt: u8) -> String {
    let mut s = header(local);
    let pts: Vec<String> = codecs.iter().map(|c| c.pt().to_string()).collect();
    s.push_str(&format!(
        "m=audio {} {} {} {dtmf_pt}\r\n",
        local.port,
        profile(local),
        pts.join(" ")
    ));
    for c in codecs {
        s.push_str(&format!("a=rtpmap:{} {}/8000\r\n", c.pt(), c.name()));
    }
    s.push_str(&format!(
        "a=rtpmap:{dtmf_pt} telephone-event/8000\r\na=fmtp:{dtmf_pt} 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    ));
    s.push_str(&crypto_line(local, 1));
    s
}

/// Our offer when the caller sent none (late offer, RFC 3261 §13.2.1): both G.711 laws and
/// telephone-event; the caller picks in the SDP of its ACK.
pub fn offer_any(local: &LocalMedia, dtmf_pt: u8) -> String {
    offer(local, &Codec::Pcmu.preferred(), dtmf_pt)
}

/// Builds the answer to `offer` given the negotiation result, keeping m-line order.
pub fn answer(local: &LocalMedia, offered: &Sdp, n: &Negotiated) -> String {
    let mut s = header(local);
    let mut audio_done = false;
    for m in &offered.media {
        let is_ours = !audio_done && m.is_rtp_audio();
        if !is_ours {
            s.push_str(&format!(
                "m={} 0 {} {}\r\n",
                m.kind,
                m.proto,
                m.formats.first().map(String::as_str).unwrap_or("0")
            ));
            continue;
        }
        audio_done = true;
        let dir = match n.direction {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        };
        s.push_str(&format!(
            "m=audio {} {} {}",
            local.port,
            profile(local),
            n.codec_pt
        ));
        if let Some(d) = n.dtmf_pt {
            s.push_str(&format!(" {d}"));
        }
        s.push_str(&format!(
            "\r\na=rtpmap:{} {}/8000\r\n",
            n.codec_pt,
            n.codec.name()
        ));
        if let Some(d) = n.dtmf_pt {
            s.push_str(&format!(
                "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\n"
            ));
        }
        s.push_str(&format!("a=ptime:20\r\na={}\r\n", dir.attr()));
        if let Some(c) = n.srtp {
            s.push_str(&crypto_line(local, c.tag));
        }
    }
    s
}

fn header(l: &LocalMedia) -> String {
    let fam = if l.ip.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=acd {} {} IN {fam} {}\r\ns=acd\r\nc=IN {fam} {}\r\nt=0 0\r\n",
        l.session_id, l.version, l.ip, l.ip
    )
}

#[cfg(test)]
mod tests;
