//! RTP sockets: one task per call owns the caller and agent sockets, plays prompts and hold music
//! while the caller waits, detects RFC 4733 digits, and relays both ways once bridged.
//!
//! The relay path does no allocation, no lock and no logging per packet: a fixed buffer per
//! direction, one [`Bridge::handle_packet`] decision (address check, payload-type map) and one
//! `send_to`.

use crate::acd::CallId;
use crate::call::{MediaEvent, MediaStart};
use crate::media::bridge::{Bridge, DropReason, Expect, LearnConfig, Verdict};
use crate::media::prompt::Prompt;
use crate::media::recorder::Side;
use crate::media::srtp::{Srtp, SrtpKeys};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{interval, MissedTickBehavior};
use tracing::warn;

/// A single-threaded runtime on its own OS thread that runs every call's media task.
///
/// On tokio's multi-thread runtime most of the relay's CPU went to waking and parking worker
/// threads for each packet (measured with `benches/load/rtp_relay.sh PERF=1`); here one thread
/// waits in epoll and runs whichever call's socket is ready, with no cross-thread hand-off.
pub struct MediaRuntime {
    handle: tokio::runtime::Handle,
    /// Dropping this ends the thread (and with it every media task and socket).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl MediaRuntime {
    pub fn start() -> std::io::Result<MediaRuntime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("acd-media".into())
            .spawn(move || {
                let _ = rt.block_on(stopped);
            })?;
        Ok(MediaRuntime {
            handle,
            _stop: stop,
        })
    }

    pub fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.handle.spawn(f);
    }
}

/// The sounds callers hear while waiting.
pub struct Prompts {
    pub welcome: Prompt,
    pub hold: Prompt,
}

pub use crate::media::counters::{MediaCounters, MediaCounts};

/// Control messages from the core to one call's media task.
#[derive(Debug)]
pub enum MediaCtl {
    Bridge {
        agent: Expect,
        record: Option<std::path::PathBuf>,
        /// The agent leg is SRTP with these keys.
        srtp: Option<SrtpKeys>,
    },
    Hold,
    /// Play this prompt once (interrupting anything else), report `PromptDone`, then stay silent.
    Play(Arc<Prompt>),
    /// A re-INVITE or UPDATE moved one leg's media: learn its address again.
    Retarget {
        side: Side,
        remote: SocketAddr,
    },
    /// Lock a leg onto the address an earlier process learnt (see `Bridge::relock`).
    Relock {
        side: Side,
        addr: SocketAddr,
    },
    Stop,
}

/// What the caller hears while not bridged.
enum Playing {
    /// The welcome chime, then hold music.
    Welcome,
    Hold,
    /// A prompt played once (an IVR menu), then silence while the caller chooses.
    Once(Arc<Prompt>),
    Silent,
}

/// Picks the next 20 ms frame; reports when a one-shot prompt has ended.
struct Player {
    prompts: Arc<Prompts>,
    codec: crate::sdp::Codec,
    playing: Playing,
    pos: usize,
}

impl Player {
    /// The next frame to send (`None`: silence), and whether a one-shot prompt just finished.
    fn next(&mut self) -> (Option<[u8; crate::media::rtp::FRAME_SAMPLES]>, bool) {
        loop {
            let frames = match &self.playing {
                Playing::Welcome => self.prompts.welcome.frames(self.codec),
                Playing::Hold => self.prompts.hold.frames(self.codec),
                Playing::Once(p) => p.frames(self.codec),
                Playing::Silent => return (None, false),
            };
            if self.pos < frames.len() {
                self.pos += 1;
                return (Some(frames[self.pos - 1]), false);
            }
            self.pos = 0;
            match self.playing {
                Playing::Welcome => self.playing = Playing::Hold,
                Playing::Hold if !frames.is_empty() => {}
                Playing::Hold => return (None, false),
                Playing::Once(_) => {
                    self.playing = Playing::Silent;
                    return (None, true);
                }
                Playing::Silent => return (None, false),
            }
        }
    }

    fn set(&mut self, p: Playing) {
        self.playing = p;
        self.pos = 0;
    }
}

/// A recording in progress: mixed audio (from the bridge's recorder) is appended as it settles;
/// the header is written when the call's media ends.
struct RecordingFile {
    out: std::io::BufWriter<std::fs::File>,
    samples: u32,
    path: std::path::PathBuf,
}

impl RecordingFile {
    fn create(path: std::path::PathBuf) -> std::io::Result<Self> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        out.write_all(&crate::media::recorder::wav_header(0))?;
        Ok(RecordingFile {
            out,
            samples: 0,
            path,
        })
    }

    fn write(&mut self, pcm: &[i16]) {
        use std::io::Write;
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        if self.out.write_all(&bytes).is_ok() {
            self.samples += pcm.len() as u32;
        }
    }

    /// Writes the rest and the final header.
    fn finish(mut self, rest: &[i16]) {
        use std::io::{Seek, Write};
        self.write(rest);
        let header = crate::media::recorder::wav_header(self.samples);
        let done = self
            .out
            .flush()
            .and_then(|_| self.out.get_mut().seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| self.out.get_mut().write_all(&header));
        if let Err(e) = done {
            warn!(path = %self.path.display(), error = %e, "recording not finished cleanly");
        }
    }
}

/// Digits one call may have waiting for a busy core before further ones are dropped.
const MAX_WAITING_DIGITS: usize = 32;

/// A call's media events on their way to the core. Nothing here waits for the core and nothing
/// is lost: `PromptDone`, `Timeout`, `Validated` and `Failed` happen a few times per call and
/// always queue; only digits, which a caller can send as fast as packets, have a cap.
#[derive(Default)]
struct Outbox {
    q: VecDeque<MediaEvent>,
}

impl Outbox {
    fn push(&mut self, ev: MediaEvent, counters: &MediaCounters) {
        let digits = self
            .q
            .iter()
            .filter(|e| matches!(e, MediaEvent::Dtmf { .. }))
            .count();
        if matches!(ev, MediaEvent::Dtmf { .. }) && digits >= MAX_WAITING_DIGITS {
            counters.digits_dropped.fetch_add(1, Relaxed);
            return;
        }
        self.q.push_back(ev);
    }

    /// Hands over everything still waiting, waiting for room: used as the task ends.
    async fn flush(&mut self, to: &mpsc::Sender<crate::control::Input>) {
        while let Some(ev) = self.q.pop_front() {
            if to.send(crate::control::Input::Media(ev)).await.is_err() {
                return;
            }
        }
    }
}

/// Everything a call's media task starts with.
pub struct CallMedia {
    pub start: MediaStart,
    /// The caller and agent sockets, bound when their ports were taken (none: bind now).
    pub bound: Option<(std::net::UdpSocket, std::net::UdpSocket)>,
    pub bind_ip: IpAddr,
    pub rtp_timeout: Duration,
    pub prompts: Arc<Prompts>,
    pub counters: Arc<MediaCounters>,
    pub learn: LearnConfig,
}

/// Runs one call's media until Stop, the control channel closing, or RTP inactivity. Every
/// packet goes through the call's [`Bridge`], which decides; this loop only moves bytes.
pub async fn run_call_media(
    m: CallMedia,
    mut ctl: mpsc::Receiver<MediaCtl>,
    events: mpsc::Sender<crate::control::Input>,
) {
    let call = m.start.call;
    let mut outbox = Outbox::default();
    let pair = match m.bound {
        Some((c, a)) => UdpSocket::from_std(c).and_then(|c| Ok((c, UdpSocket::from_std(a)?))),
        None => bind_pair(m.bind_ip, m.start.caller_port, m.start.agent_port).await,
    };
    let (caller, agent) = match pair {
        Ok(pair) => pair,
        Err(e) => {
            let error = format!("bind RTP port: {e}");
            outbox.push(MediaEvent::Failed { call, error }, &m.counters);
            outbox.flush(&events).await;
            return;
        }
    };
    let expect = Expect {
        sdp: m.start.caller_remote,
        signalling: Some(m.start.caller_signalling),
        codec: m.start.codec,
        codec_pt: m.start.codec_pt,
        dtmf_pt: m.start.dtmf_pt,
    };
    let mut bridge = Bridge::new(Instant::now(), m.learn, expect, m.start.validated);
    let mut player = Player {
        prompts: m.prompts.clone(),
        codec: m.start.codec,
        playing: Playing::Welcome,
        pos: 0,
    };
    let mut tick = interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut check = interval(Duration::from_secs(1));
    let mut last_rx = Instant::now();
    let mut buf_in = [0u8; 2048];
    let mut buf_out = [0u8; 2048];
    let mut recording: Option<RecordingFile> = None;
    // SRTP contexts per leg: (what the peer sends us, what we send it).
    let mut caller_srtp = m
        .start
        .caller_srtp
        .map(|k| (Srtp::new(&k.theirs), Srtp::new(&k.ours)));
    let mut agent_srtp: Option<(Srtp, Srtp, SrtpKeys)> = None;
    loop {
        tokio::select! {
            Ok(permit) = events.reserve(), if !outbox.q.is_empty() => {
                if let Some(ev) = outbox.q.pop_front() {
                    permit.send(crate::control::Input::Media(ev));
                }
            }
            r = caller.recv_from(&mut buf_in) => {
                let Ok((n, src)) = r else { continue };
                let now = Instant::now();
                let Some(n) = open(&mut caller_srtp, &mut buf_in[..n], &m.counters) else { continue };
                let pkt = &mut buf_in[..n];
                let verdict = bridge.handle_packet(now, Side::Caller, src, pkt);
                note(&bridge, &m.counters, &mut outbox, call, Side::Caller);
                match verdict {
                    Verdict::Drop(r) => m.counters.refused(r),
                    Verdict::Keep { digit } => {
                        last_rx = now;
                        if let Some(digit) = digit {
                            outbox.push(MediaEvent::Dtmf { call, digit }, &m.counters);
                        }
                    }
                    Verdict::Forward { to, digit } => {
                        last_rx = now;
                        if let Some(digit) = digit {
                            outbox.push(MediaEvent::Dtmf { call, digit }, &m.counters);
                        }
                        let Some(n) = seal(agent_srtp.as_mut().map(|a| &mut a.1), &mut buf_in, n) else { continue };
                        if agent.send_to(&buf_in[..n], to).await.is_ok() {
                            m.counters.to_agent.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            r = agent.recv_from(&mut buf_out) => {
                let Ok((n, src)) = r else { continue };
                let mut agent_rx = agent_srtp.as_mut().map(|a| &mut a.0);
                let Some(n) = open_with(&mut agent_rx, &mut buf_out[..n], &m.counters) else { continue };
                let pkt = &mut buf_out[..n];
                let verdict = bridge.handle_packet(Instant::now(), Side::Agent, src, pkt);
                note(&bridge, &m.counters, &mut outbox, call, Side::Agent);
                match verdict {
                    Verdict::Drop(r) => m.counters.refused(r),
                    Verdict::Keep { .. } => {}
                    Verdict::Forward { to, .. } => {
                        let Some(n) = seal(caller_srtp.as_mut().map(|c| &mut c.1), &mut buf_out, n) else { continue };
                        if caller.send_to(&buf_out[..n], to).await.is_ok() {
                            m.counters.to_caller.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            // Nothing towards a caller who has not proven their address (anti-amplification).
            _ = tick.tick(), if !bridge.bridged() => {
                let Some(to) = bridge.send_target(Side::Caller) else { continue };
                let (frame, done) = player.next();
                if done {
                    outbox.push(MediaEvent::PromptDone { call }, &m.counters);
                }
                let Some(frame) = frame else { continue };
                let mut out = [0u8; 256];
                let n = bridge.prompt_packet(&frame, &mut out);
                let Some(n) = seal(caller_srtp.as_mut().map(|c| &mut c.1), &mut out, n) else { continue };
                if caller.send_to(&out[..n], to).await.is_ok() {
                    m.counters.prompt_frames.fetch_add(1, Relaxed);
                    if matches!(player.playing, Playing::Once(_)) {
                        m.counters.once_frames.fetch_add(1, Relaxed);
                    }
                }
            }
            _ = check.tick() => {
                if let (Some(f), Some(r)) = (recording.as_mut(), bridge.recorder()) {
                    f.write(&r.take_ready(Instant::now()));
                }
                if last_rx.elapsed() > m.rtp_timeout {
                    outbox.push(MediaEvent::Timeout { call }, &m.counters);
                    break;
                }
            }
            c = ctl.recv() => match c {
                Some(MediaCtl::Bridge { agent: a, record, srtp }) => {
                    // New keys make new contexts; the same keys (un-hold) keep their state.
                    agent_srtp = match (agent_srtp.take(), srtp) {
                        (Some(cur), Some(k)) if cur.2 == k => Some(cur),
                        (_, Some(k)) => Some((Srtp::new(&k.theirs), Srtp::new(&k.ours), k)),
                        (_, None) => None,
                    };
                    if let (None, Some(path)) = (&recording, record) {
                        match RecordingFile::create(path.clone()) {
                            Ok(f) => {
                                recording = Some(f);
                                bridge.record(Instant::now(), m.start.codec);
                            }
                            Err(e) => warn!(path = %path.display(), error = %e, "cannot record this call"),
                        }
                    }
                    bridge.bridge(Instant::now(), a);
                }
                Some(MediaCtl::Hold) => {
                    bridge.unbridge();
                    player.set(Playing::Hold);
                }
                Some(MediaCtl::Play(p)) => {
                    bridge.unbridge();
                    player.set(Playing::Once(p));
                }
                Some(MediaCtl::Retarget { side, remote }) => {
                    bridge.retarget(Instant::now(), side, remote);
                }
                Some(MediaCtl::Relock { side, addr }) => bridge.relock(side, addr),
                Some(MediaCtl::Stop) | None => break,
            },
        }
    }
    if let Some(f) = recording {
        let rest = bridge.recorder().map(|r| r.finish()).unwrap_or_default();
        f.finish(&rest);
    }
    outbox.flush(&events).await;
}

/// Counts a leg that locked and tells the core once the caller proved their address.
/// Reports what the last packet taught the bridge: a leg locked (the core keeps the address
/// in the call's snapshot) or the caller's path proven.
fn note(bridge: &Bridge, counters: &MediaCounters, outbox: &mut Outbox, call: CallId, side: Side) {
    if bridge.last.locked {
        counters.learned.fetch_add(1, Relaxed);
        if let Some(addr) = bridge.learned(side) {
            let leg = match side {
                Side::Caller => crate::call::Leg::Caller,
                Side::Agent => crate::call::Leg::Agent,
            };
            outbox.push(MediaEvent::Learned { call, leg, addr }, counters);
        }
    }
    if bridge.last.validated {
        outbox.push(MediaEvent::Validated { call }, counters);
    }
}

/// Decrypts an SRTP packet in place when the leg is SRTP; `None` (counted) when it fails
/// authentication or is replayed. Plain legs pass the packet through.
fn open(leg: &mut Option<(Srtp, Srtp)>, pkt: &mut [u8], counters: &MediaCounters) -> Option<usize> {
    let mut rx = leg.as_mut().map(|l| &mut l.0);
    open_with(&mut rx, pkt, counters)
}

fn open_with(
    rx: &mut Option<&mut Srtp>,
    pkt: &mut [u8],
    counters: &MediaCounters,
) -> Option<usize> {
    match rx {
        None => Some(pkt.len()),
        Some(rx) => match rx.unprotect(pkt) {
            Ok(n) => Some(n),
            Err(_) => {
                counters.refused(DropReason::Srtp);
                None
            }
        },
    }
}

/// Encrypts `buf[..n]` in place for an SRTP leg; the new length, or `None` when it does not fit.
fn seal(tx: Option<&mut Srtp>, buf: &mut [u8], n: usize) -> Option<usize> {
    match tx {
        None => Some(n),
        Some(tx) => tx.protect(buf, n).ok(),
    }
}

/// Binds a call's two RTP ports.
async fn bind_pair(ip: IpAddr, caller: u16, agent: u16) -> std::io::Result<(UdpSocket, UdpSocket)> {
    let c = UdpSocket::bind(SocketAddr::new(ip, caller)).await?;
    let a = UdpSocket::bind(SocketAddr::new(ip, agent)).await?;
    Ok((c, a))
}
