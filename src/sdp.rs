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
mod tests {
    use super::*;

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\nm=video 3227 RTP/AVP 31\r\n";

    #[test]
    fn telephone_event_is_the_one_on_the_g711_clock() {
        // pjsua2 offers 16000 first, linphone 48000: the 8000 Hz one goes with G.711.
        for (formats, maps, want) in [
            (
                "0 120 121",
                "a=rtpmap:120 telephone-event/16000\r\na=rtpmap:121 telephone-event/8000\r\n",
                Some(121),
            ),
            (
                "0 99 101",
                "a=rtpmap:99 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n",
                Some(101),
            ),
            ("0 99", "a=rtpmap:99 telephone-event/48000\r\n", None),
            ("0 101", "a=rtpmap:101 telephone-event/8000\r\n", Some(101)),
        ] {
            let body = format!(
                "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\n{maps}"
            );
            let n = Sdp::parse(body.as_bytes()).unwrap().negotiate().unwrap();
            assert_eq!(n.dtmf_pt, want, "{formats}");
        }
    }

    #[test]
    fn negotiates_first_supported_codec_and_dtmf() {
        let s = Sdp::parse(SIPP.as_bytes()).unwrap();
        let n = s.negotiate().unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.dtmf_pt, Some(101));
        assert_eq!(n.remote, "127.0.0.1:6000".parse().unwrap());
        let local = LocalMedia {
            ip: "127.0.0.1".parse().unwrap(),
            port: 20000,
            session_id: 1,
            version: 1,
            srtp: None,
        };
        let a = answer(&local, &s, &n);
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"));
        assert!(a.contains("m=video 0 RTP/AVP 31\r\n"), "{a}");
        let back = Sdp::parse(a.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!(back.codec, Codec::Pcma);
    }

    #[test]
    fn ipv6_connection_and_no_common_codec() {
        let s =
            Sdp::parse(b"v=0\r\nc=IN IP6 2001:db8::10\r\nm=audio 49217 RTP/AVP 0 12\r\n").unwrap();
        assert_eq!(
            s.negotiate().unwrap().remote.ip(),
            "2001:db8::10".parse::<IpAddr>().unwrap()
        );
        let s = Sdp::parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 49217 RTP/AVP 18\r\n").unwrap();
        assert_eq!(s.negotiate(), Err(SdpError::NoCommonCodec));
        assert!(Sdp::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
    }

    #[test]
    fn srtp_offers_are_answered_with_our_key_under_their_tag() {
        use crate::media::srtp::MasterKey;
        let theirs = MasterKey::random();
        let offer = format!(
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0 101\r\n\
             a=rtpmap:101 telephone-event/8000\r\n\
             a=crypto:2 AES_CM_256_HMAC_SHA1_80 inline:AAAA\r\n\
             a=crypto:7 AES_CM_128_HMAC_SHA1_80 {}|2^31\r\n",
            theirs.to_inline()
        );
        let sdp = Sdp::parse(offer.as_bytes()).unwrap();
        let n = sdp.negotiate().unwrap();
        assert_eq!(
            n.srtp,
            Some(Crypto {
                tag: 7,
                key: theirs
            })
        );
        let ours = MasterKey::random();
        let local = LocalMedia {
            ip: "127.0.0.1".parse().unwrap(),
            port: 20000,
            session_id: 1,
            version: 1,
            srtp: Some(ours),
        };
        let a = answer(&local, &sdp, &n);
        assert!(a.contains("m=audio 20000 RTP/SAVP 0 101\r\n"), "{a}");
        assert!(
            a.contains(&format!(
                "a=crypto:7 AES_CM_128_HMAC_SHA1_80 {}\r\n",
                ours.to_inline()
            )),
            "{a}"
        );
        // And our answer reads back as the same key.
        let back = Sdp::parse(a.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!(back.srtp.map(|c| c.key), Some(ours));
        // An offer for us (an agent) carries tag 1.
        let o = offer_plain_or_not(&local);
        assert!(
            o.contains("RTP/SAVP") && o.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{o}"
        );
    }

    fn offer_plain_or_not(local: &LocalMedia) -> String {
        offer(local, &[Codec::Pcmu], 101)
    }

    #[test]
    fn an_agent_is_offered_the_callers_law_first_and_the_other_for_transcoding() {
        let local = LocalMedia {
            ip: "10.0.0.9".parse().unwrap(),
            port: 20002,
            session_id: 77,
            version: 3,
            srtp: None,
        };
        let o = offer(&local, &Codec::Pcma.preferred(), 101);
        assert!(o.contains("m=audio 20002 RTP/AVP 8 0 101\r\n"), "{o}");
        assert!(
            o.contains("a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"),
            "{o}"
        );
        // A PCMU-only phone's answer is taken (and the bridge transcodes).
        let pcmu_only = o.replace("RTP/AVP 8 0 101", "RTP/AVP 0 101");
        let n = Sdp::parse(pcmu_only.as_bytes())
            .unwrap()
            .negotiate()
            .unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        // Our o= reads back (a resumed call's agent leg goes on from it).
        assert_eq!(
            Origin::of(o.as_bytes()),
            Some(Origin {
                session: 77,
                version: 3
            })
        );
        assert_eq!(Origin::of(b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n"), None);
        let (mut a, b) = (Origin::new(), Origin::new());
        assert_ne!(a.session, b.session, "random per leg");
        assert!(a.session < 1 << 63);
        assert_eq!((a.bump(), a.bump()), (2, 3));
    }

    #[test]
    fn srtp_without_a_suite_we_take_is_refused_and_plain_stays_plain() {
        let only256 = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:AAAA\r\n";
        assert_eq!(
            Sdp::parse(only256.as_bytes()).unwrap().negotiate(),
            Err(SdpError::NoCommonCrypto)
        );
        let bad_key = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short\r\n";
        assert_eq!(
            Sdp::parse(bad_key.as_bytes()).unwrap().negotiate(),
            Err(SdpError::NoCommonCrypto)
        );
        let plain = Sdp::parse(SIPP.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!(plain.srtp, None);
    }
}
