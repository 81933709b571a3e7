//! The relay's decisions for one call, sans-IO: which packets are accepted, where they go, which
//! carry a digit, and where acd may send at all. `net/media.rs` only moves bytes.
//!
//! **Strict address learning** (the Asterisk `strictrtp` / rtpengine `strict-source` class of
//! defence against "RTP Bleed"): a leg's peer address is learnt at most once and then locked.
//! - A packet from the exact address in the SDP locks the leg at once (that address was
//!   signalled, and wins over a NAT guess while the learning window is open).
//! - Behind NAT the SDP address is private, so within `window` of the leg's start a source the
//!   [`NatLearning`] rule allows (by default: the IP the SIP signalling came from) is learnt once
//!   it sent `probation` consecutive packets of one stream (same SSRC, consecutive sequence
//!   numbers) with the negotiated payload types.
//! - Once locked, packets from anyone else are dropped and counted. A leg re-learns only after a
//!   signalled change ([`Bridge::retarget`], from a re-INVITE or UPDATE), or, when
//!   `follow_ssrc` is on, when the locked stream itself moves (same SSRC, the next sequence
//!   numbers: a NAT rebinding), from a source the NAT rule allows.
//!
//! **Anti-amplification**: nothing is sent towards the caller before the caller proved the path
//! (their ACK, or an accepted RTP packet from them in early-media mode): [`Bridge::send_target`]
//! is `None` until then. Digits are only taken from accepted packets, so a stranger cannot press
//! keys in the IVR, the survey or the callback menu.
//!
//! **One stream per leg towards the caller**: acd's prompts and the agent's relayed audio go out
//! as one RTP stream (our SSRC, continuous numbering, the marker at each change of source, see
//! [`Sender`]). **Transcoding**: when the agent's phone took the other G.711 law than the
//! caller's, each relayed audio payload is turned into the other law in place (one table lookup
//! per byte); legs that agree are relayed untouched.

use super::dtmf::Detector;
use super::recorder::{Recorder, Side};
use super::rtp::Sender;
use crate::sdp::Codec;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Which sources may be learnt instead of the exact SDP address (the NAT case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatLearning {
    /// Only the SDP address: for peers that are never behind NAT (an SBC, a trunk).
    Off,
    /// Any port on the IP the SIP signalling came from, or on the SDP's IP (the default: a
    /// phone behind NAT sends its RTP from the same public address as its SIP).
    SignallingIp,
    /// Any source (a proxy in front of acd hides the phone's address): weakest, still locked.
    Any,
}

/// How legs learn their peer; `[media]` in acd.toml.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnConfig {
    /// A NAT address may be learnt this long after the leg starts (or is re-signalled).
    pub window: Duration,
    /// Consecutive packets of one stream a NAT source must send before it is learnt.
    pub probation: u8,
    pub nat: NatLearning,
    /// Follow the locked stream to a new source when its SSRC and sequence continue there.
    pub follow_ssrc: bool,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            window: Duration::from_secs(5),
            probation: 3,
            nat: NatLearning::SignallingIp,
            follow_ssrc: false,
        }
    }
}

/// Why a packet was not accepted; each reason has its counter on `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Not an RTP packet (too short, wrong version, RTCP on the RTP port).
    NotRtp,
    /// A payload type that was not negotiated on this leg.
    Payload,
    /// From an address that is not (and may not become) this leg's peer.
    Stranger,
    /// From a NAT candidate still in probation.
    Learning,
    /// On an SRTP leg: failed authentication or replayed (checked before the bridge sees it).
    Srtp,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::NotRtp,
        DropReason::Payload,
        DropReason::Stranger,
        DropReason::Learning,
        DropReason::Srtp,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DropReason::NotRtp => "not_rtp",
            DropReason::Payload => "payload_type",
            DropReason::Stranger => "stranger",
            DropReason::Learning => "learning",
            DropReason::Srtp => "srtp",
        }
    }
}

/// What to do with one received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the packet (its payload type already mapped) to `to` from the other leg's socket.
    Forward {
        to: SocketAddr,
        digit: Option<char>,
    },
    /// Accepted from the leg's peer, but there is nowhere to relay it (not bridged, on hold).
    Keep {
        digit: Option<char>,
    },
    Drop(DropReason),
}

/// What one leg expects: where the SDP said it is, where its SIP came from, what it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub sdp: SocketAddr,
    pub signalling: Option<IpAddr>,
    pub codec: Codec,
    pub codec_pt: u8,
    pub dtmf_pt: Option<u8>,
}

impl Expect {
    fn allows_pt(&self, pt: u8) -> bool {
        // 13: comfort noise (RFC 3389), static and sent by phones with silence suppression.
        pt == self.codec_pt || Some(pt) == self.dtmf_pt || pt == 13
    }
}

/// Learning for one leg.
#[derive(Clone, Debug)]
struct Learner {
    expect: Expect,
    since: Instant,
    locked: Option<SocketAddr>,
    /// The lock is on the SDP address itself (nothing may replace it but a new signal).
    exact: bool,
    /// A NAT candidate: source, SSRC, last sequence number, packets so far.
    candidate: Option<(SocketAddr, u32, u16, u8)>,
    /// SSRC and sequence of the locked stream (for `follow_ssrc`).
    last: Option<(u32, u16)>,
}

enum Learnt {
    Known,
    New,
}

impl Learner {
    fn new(now: Instant, expect: Expect) -> Learner {
        Learner {
            expect,
            since: now,
            locked: None,
            exact: false,
            candidate: None,
            last: None,
        }
    }

    fn nat_allows(&self, cfg: &LearnConfig, ip: IpAddr) -> bool {
        match cfg.nat {
            NatLearning::Off => false,
            NatLearning::SignallingIp => {
                Some(ip) == self.expect.signalling || ip == self.expect.sdp.ip()
            }
            NatLearning::Any => true,
        }
    }

    fn accept(
        &mut self,
        now: Instant,
        cfg: &LearnConfig,
        src: SocketAddr,
        ssrc: u32,
        seq: u16,
    ) -> Result<Learnt, DropReason> {
        if self.locked == Some(src) {
            self.last = Some((ssrc, seq));
            return Ok(Learnt::Known);
        }
        let open = now.saturating_duration_since(self.since) < cfg.window;
        if src == self.expect.sdp && (self.locked.is_none() || (!self.exact && open)) {
            return Ok(self.lock(src, true, ssrc, seq));
        }
        if self.locked.is_some() {
            let continues = self.last.is_some_and(|(s, q)| {
                s == ssrc && seq.wrapping_sub(q).wrapping_sub(1) < 4 && seq != q
            });
            if cfg.follow_ssrc && !self.exact && continues && self.nat_allows(cfg, src.ip()) {
                return Ok(self.lock(src, false, ssrc, seq));
            }
            return Err(DropReason::Stranger);
        }
        if !open || !self.nat_allows(cfg, src.ip()) {
            return Err(DropReason::Stranger);
        }
        let count = match self.candidate {
            Some((a, s, q, n)) if a == src && s == ssrc && seq == q.wrapping_add(1) => n + 1,
            _ => 1,
        };
        if count >= cfg.probation.max(1) {
            return Ok(self.lock(src, false, ssrc, seq));
        }
        self.candidate = Some((src, ssrc, seq, count));
        Err(DropReason::Learning)
    }

    fn lock(&mut self, src: SocketAddr, exact: bool, ssrc: u32, seq: u16) -> Learnt {
        self.locked = Some(src);
        self.exact = exact;
        self.candidate = None;
        self.last = Some((ssrc, seq));
        Learnt::New
    }

    /// Where to send to this leg: the learnt address, else the signalled one.
    fn target(&self) -> SocketAddr {
        self.locked.unwrap_or(self.expect.sdp)
    }
}

/// Maps payload types from one leg's numbering to the other's.
#[derive(Clone)]
struct PtMap([u8; 128]);

impl PtMap {
    fn identity() -> PtMap {
        let mut m = [0u8; 128];
        for (i, v) in m.iter_mut().enumerate() {
            *v = i as u8;
        }
        PtMap(m)
    }
}

/// Counts of what the bridge did, read and reset by the media task into shared counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// A leg locked onto its peer (first time or after a signalled change).
    pub locked: bool,
    /// The caller proved the path just now (early media: their first accepted packet).
    pub validated: bool,
}

/// One call's relay state.
pub struct Bridge {
    cfg: LearnConfig,
    caller: Learner,
    agent: Option<Learner>,
    bridged: bool,
    validated: bool,
    to_agent: PtMap,
    to_caller: PtMap,
    /// Byte tables turning caller audio into the agent's law and back, when they differ.
    transcode_to_agent: Option<&'static [u8; 256]>,
    transcode_to_caller: Option<&'static [u8; 256]>,
    /// The one RTP stream we send the caller: prompts, and the agent's audio re-written.
    caller_stream: Sender,
    detector: Detector,
    /// The RTP timestamp of the caller's last telephone-event heard while not bridged: acd
    /// consumed that digit (menu, callback key), so the rest of its packets are not relayed
    /// when the agent answers before the key is released.
    consumed_event: Option<u32>,
    recorder: Option<Recorder>,
    /// Set by the last `handle_packet`.
    pub last: Learned,
}

/// The header fields the bridge needs, read without allocating.
fn header(pkt: &[u8]) -> Option<(u8, u16, u32, u32)> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let pt = pkt[1] & 0x7f;
    let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
    let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
    let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
    Some((pt, seq, ts, ssrc))
}

impl Bridge {
    /// A call's media starts: the caller's leg is known; `validated` when their ACK already
    /// proved the path (immediate answer), false on early media until their RTP arrives.
    pub fn new(now: Instant, cfg: LearnConfig, caller: Expect, validated: bool) -> Bridge {
        Bridge {
            cfg,
            caller: Learner::new(now, caller),
            agent: None,
            bridged: false,
            validated,
            to_agent: PtMap::identity(),
            to_caller: PtMap::identity(),
            transcode_to_agent: None,
            transcode_to_caller: None,
            caller_stream: Sender::new(rand::random(), caller.codec_pt),
            detector: Detector::default(),
            consumed_event: None,
            recorder: None,
            last: Learned::default(),
        }
    }

    /// The agent answered (or came off hold): relay both ways. A new agent address is learnt
    /// afresh; the same one keeps its lock.
    pub fn bridge(&mut self, now: Instant, agent: Expect) {
        if self.agent.as_ref().map(|a| a.expect) != Some(agent) {
            self.agent = Some(Learner::new(now, agent));
        }
        let c = &self.caller.expect;
        self.to_agent = PtMap::identity();
        self.to_caller = PtMap::identity();
        self.to_agent.0[(c.codec_pt & 0x7f) as usize] = agent.codec_pt & 0x7f;
        self.to_caller.0[(agent.codec_pt & 0x7f) as usize] = c.codec_pt & 0x7f;
        if let (Some(cd), Some(ad)) = (c.dtmf_pt, agent.dtmf_pt) {
            self.to_agent.0[(cd & 0x7f) as usize] = ad & 0x7f;
            self.to_caller.0[(ad & 0x7f) as usize] = cd & 0x7f;
        }
        self.transcode_to_agent = super::g711::transcode_table(c.codec, agent.codec);
        self.transcode_to_caller = super::g711::transcode_table(agent.codec, c.codec);
        self.caller_stream.resync();
        self.bridged = true;
    }

    /// Back to acd's own audio for the caller (hold music, a prompt): nothing is relayed.
    pub fn unbridge(&mut self) {
        self.bridged = false;
        self.caller_stream.resync();
    }

    /// Writes our next 20 ms frame to the caller (prompt, hold music) into `out`, in the
    /// caller's stream; returns its length.
    pub fn prompt_packet(&mut self, payload: &[u8], out: &mut [u8]) -> usize {
        self.caller_stream.packet(payload, out)
    }

    /// The SSRC of the caller's stream.
    pub fn caller_ssrc(&self) -> u32 {
        self.caller_stream.ssrc
    }

    pub fn bridged(&self) -> bool {
        self.bridged
    }

    /// A re-INVITE or UPDATE signalled a new address for `side`: learn it again.
    pub fn retarget(&mut self, now: Instant, side: Side, sdp: SocketAddr) {
        let leg = match side {
            Side::Caller => Some(&mut self.caller),
            Side::Agent => self.agent.as_mut(),
        };
        if let Some(l) = leg {
            if l.expect.sdp != sdp {
                let expect = Expect { sdp, ..l.expect };
                *l = Learner::new(now, expect);
            }
        }
    }

    /// Where `side` is locked when that is not the address its SDP named (a phone behind
    /// NAT): what a snapshot must keep, since the SDP alone would not find the phone again.
    pub fn learned(&self, side: Side) -> Option<SocketAddr> {
        let l = match side {
            Side::Caller => Some(&self.caller),
            Side::Agent => self.agent.as_ref(),
        }?;
        l.locked.filter(|a| *a != l.expect.sdp)
    }

    /// Locks `side` onto `addr`, an address an earlier process learnt for this call (from its
    /// snapshot, our own record): media goes there at once, before the phone's first packet
    /// after the restart, and a stranger cannot move it; the SDP address or a new signal
    /// still may, as for any lock that was not on the SDP address itself.
    pub fn relock(&mut self, side: Side, addr: SocketAddr) {
        let leg = match side {
            Side::Caller => Some(&mut self.caller),
            Side::Agent => self.agent.as_mut(),
        };
        if let Some(l) = leg {
            l.locked = Some(addr);
            l.exact = addr == l.expect.sdp;
        }
    }

    /// The caller's path is proven by signalling (the ACK of our 200).
    pub fn validate(&mut self) {
        self.validated = true;
    }

    /// Where acd may send to `side` now: `None` before the caller proved the path.
    pub fn send_target(&self, side: Side) -> Option<SocketAddr> {
        match side {
            Side::Caller => self.validated.then(|| self.caller.target()),
            Side::Agent => self.agent.as_ref().map(Learner::target),
        }
    }

    /// Where `side` is locked, if it is.
    pub fn locked(&self, side: Side) -> Option<SocketAddr> {
        match side {
            Side::Caller => self.caller.locked,
            Side::Agent => self.agent.as_ref().and_then(|a| a.locked),
        }
    }

    /// Starts mixing both legs into a recording (kept if already recording).
    pub fn record(&mut self, now: Instant, codec: crate::sdp::Codec) {
        if self.recorder.is_none() {
            self.recorder = Some(Recorder::new(codec, now));
        }
    }

    pub fn recorder(&mut self) -> Option<&mut Recorder> {
        self.recorder.as_mut()
    }

    /// Decides about one packet that arrived on `side`'s socket from `src`; maps its payload
    /// type in place when it is to be forwarded.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        side: Side,
        src: SocketAddr,
        pkt: &mut [u8],
    ) -> Verdict {
        self.last = Learned::default();
        let Some((pt, seq, ts, ssrc)) = header(pkt) else {
            return Verdict::Drop(DropReason::NotRtp);
        };
        let cfg = self.cfg;
        let leg = match side {
            Side::Caller => &mut self.caller,
            Side::Agent => match self.agent.as_mut() {
                Some(a) => a,
                None => return Verdict::Drop(DropReason::Stranger),
            },
        };
        if !leg.expect.allows_pt(pt) {
            return Verdict::Drop(DropReason::Payload);
        }
        let dtmf = leg.expect.dtmf_pt == Some(pt);
        match leg.accept(now, &cfg, src, ssrc, seq) {
            Ok(Learnt::New) => self.last.locked = true,
            Ok(Learnt::Known) => {}
            Err(r) => return Verdict::Drop(r),
        }
        let mut digit = None;
        if side == Side::Caller {
            if !self.validated {
                self.validated = true;
                self.last.validated = true;
            }
            if dtmf {
                digit = super::rtp::payload(pkt).and_then(|p| self.detector.feed(ts, p));
                if !self.bridged {
                    self.consumed_event = Some(ts);
                } else if self.consumed_event == Some(ts) {
                    return Verdict::Keep { digit };
                }
            }
        }
        if !self.bridged {
            return Verdict::Keep { digit };
        }
        // Audio (not digits, not comfort noise) in the other law is turned into the
        // receiver's: the recording mixes in the caller's law, so it hears the agent's
        // packets after, and the caller's before, that step.
        let audio = !dtmf && pt != 13;
        let (table, to) = match side {
            Side::Caller => (self.transcode_to_agent, self.send_target(Side::Agent)),
            Side::Agent => (self.transcode_to_caller, self.send_target(Side::Caller)),
        };
        if audio && side == Side::Agent {
            if let Some(t) = table {
                transcode(pkt, t);
            }
        }
        if let (true, Some(r)) = (audio, self.recorder.as_mut()) {
            if let Some(p) = super::rtp::payload(pkt) {
                r.feed(side, now, p);
            }
        }
        if audio && side == Side::Caller {
            if let Some(t) = table {
                transcode(pkt, t);
            }
        }
        let Some(to) = to else {
            return Verdict::Keep { digit };
        };
        let map = match side {
            Side::Caller => &self.to_agent,
            Side::Agent => &self.to_caller,
        };
        pkt[1] = (pkt[1] & 0x80) | map.0[pt as usize];
        if side == Side::Agent {
            self.caller_stream.relay(pkt);
        }
        Verdict::Forward { to, digit }
    }
}

/// Maps an RTP packet's payload bytes through `table` in place (header, CSRCs, extension and
/// padding untouched).
fn transcode(pkt: &mut [u8], table: &[u8; 256]) {
    if let Some(range) = super::rtp::payload_range(pkt) {
        for b in &mut pkt[range] {
            *b = table[*b as usize];
        }
    }
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "bridge_stream_tests.rs"]
mod stream_tests;
