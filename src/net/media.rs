//! RTP sockets: one task per call owns the caller and agent sockets, plays prompts and hold music
//! while the caller waits, detects RFC 4733 digits, and relays both ways once bridged.
//!
//! The relay path does no allocation, no lock and no logging per packet: a fixed buffer per
//! direction, a payload-type table lookup and one `send_to`.

use crate::call::{MediaEvent, MediaStart};
use crate::media::dtmf::Detector;
use crate::media::prompt::Prompt;
use crate::media::recorder::Side;
use crate::media::rtp::{self, Sender};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{interval, Instant, MissedTickBehavior};
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

/// Packet counters shared by all media tasks of one server (relaxed atomics: no lock per packet).
#[derive(Debug, Default)]
pub struct MediaCounters {
    pub to_agent: std::sync::atomic::AtomicU64,
    pub to_caller: std::sync::atomic::AtomicU64,
    pub prompt_frames: std::sync::atomic::AtomicU64,
    /// Of those, frames of one-shot prompts (menus, announcements, survey).
    pub once_frames: std::sync::atomic::AtomicU64,
}

/// A copy of the counters for the status API.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MediaCounts {
    pub relayed_to_agent: u64,
    pub relayed_to_caller: u64,
    pub prompt_frames: u64,
    pub once_frames: u64,
}

impl MediaCounters {
    pub fn snapshot(&self) -> MediaCounts {
        use std::sync::atomic::Ordering::Relaxed;
        MediaCounts {
            relayed_to_agent: self.to_agent.load(Relaxed),
            relayed_to_caller: self.to_caller.load(Relaxed),
            prompt_frames: self.prompt_frames.load(Relaxed),
            once_frames: self.once_frames.load(Relaxed),
        }
    }
}

/// Control messages from the core to one call's media task.
#[derive(Debug)]
pub enum MediaCtl {
    Bridge {
        agent_remote: SocketAddr,
        agent_codec_pt: u8,
        agent_dtmf_pt: Option<u8>,
        record: Option<std::path::PathBuf>,
    },
    Hold,
    /// Play this prompt once (interrupting anything else), report `PromptDone`, then stay silent.
    Play(Arc<Prompt>),
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

/// A recording in progress: mixed audio is appended as it settles; the header is written when
/// the call's media ends (dropped), whichever way it ends.
struct RecordingFile {
    rec: crate::media::recorder::Recorder,
    out: std::io::BufWriter<std::fs::File>,
    samples: u32,
    path: std::path::PathBuf,
}

impl RecordingFile {
    fn create(path: std::path::PathBuf, codec: crate::sdp::Codec) -> std::io::Result<Self> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        out.write_all(&crate::media::recorder::wav_header(0))?;
        Ok(RecordingFile {
            rec: crate::media::recorder::Recorder::new(codec, std::time::Instant::now()),
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
}

impl Drop for RecordingFile {
    fn drop(&mut self) {
        use std::io::{Seek, Write};
        let rest = self.rec.finish();
        self.write(&rest);
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

/// Everything a call's media task starts with.
pub struct CallMedia {
    pub start: MediaStart,
    pub bind_ip: IpAddr,
    pub rtp_timeout: Duration,
    pub prompts: Arc<Prompts>,
    pub counters: Arc<MediaCounters>,
}

/// Maps payload types from one leg's numbering to the other's.
struct PtMap([u8; 128]);

impl PtMap {
    fn identity() -> PtMap {
        let mut m = [0u8; 128];
        for (i, v) in m.iter_mut().enumerate() {
            *v = i as u8;
        }
        PtMap(m)
    }

    #[inline]
    fn apply(&self, pkt: &mut [u8]) {
        if pkt.len() >= 12 {
            let pt = (pkt[1] & 0x7f) as usize;
            pkt[1] = (pkt[1] & 0x80) | self.0[pt];
        }
    }
}

/// Runs one call's media until Stop, the control channel closing, or RTP inactivity.
pub async fn run_call_media(
    m: CallMedia,
    mut ctl: mpsc::Receiver<MediaCtl>,
    events: mpsc::Sender<crate::net::Input>,
) {
    let report = |ev: MediaEvent| {
        let _ = events.try_send(crate::net::Input::Media(ev));
    };
    let bind = |port| UdpSocket::bind(SocketAddr::new(m.bind_ip, port));
    let (caller, agent) = match (
        bind(m.start.caller_port).await,
        bind(m.start.agent_port).await,
    ) {
        (Ok(c), Ok(a)) => (c, a),
        (Err(e), _) | (_, Err(e)) => {
            report(MediaEvent::Failed {
                call: m.start.call,
                error: format!("bind RTP port: {e}"),
            });
            return;
        }
    };
    let mut caller_remote = m.start.caller_remote;
    let mut agent_remote: Option<SocketAddr> = None;
    let mut bridged = false;
    let mut to_agent = PtMap::identity();
    let mut to_caller = PtMap::identity();
    let mut sender = Sender::new(rand::random(), m.start.codec_pt);
    let mut player = Player {
        prompts: m.prompts.clone(),
        codec: m.start.codec,
        playing: Playing::Welcome,
        pos: 0,
    };
    let mut detector = Detector::default();
    let mut tick = interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut check = interval(Duration::from_secs(1));
    let mut last_rx = Instant::now();
    let mut buf_in = [0u8; 2048];
    let mut buf_out = [0u8; 2048];
    let mut recording: Option<RecordingFile> = None;
    let mut agent_dtmf: Option<u8> = None;
    loop {
        tokio::select! {
            r = caller.recv_from(&mut buf_in) => {
                let Ok((n, src)) = r else { continue };
                last_rx = Instant::now();
                caller_remote = src; // symmetric RTP: answer where the caller really is
                let pkt = &mut buf_in[..n];
                if let (Some(d), Some(pt)) = (m.start.dtmf_pt, rtp::payload_type(pkt)) {
                    if pt == d {
                        let ts = rtp::timestamp(pkt).unwrap_or(0);
                        if let Some(digit) = rtp::payload(pkt).and_then(|p| detector.feed(ts, p)) {
                            report(MediaEvent::Dtmf { call: m.start.call, digit });
                        }
                    }
                }
                if let (true, Some(r)) = (bridged, recording.as_mut()) {
                    if rtp::payload_type(pkt).is_some_and(|pt| Some(pt) != m.start.dtmf_pt) {
                        if let Some(p) = rtp::payload(pkt) {
                            r.rec.feed(Side::Caller, std::time::Instant::now(), p);
                        }
                    }
                }
                if bridged {
                    if let Some(dst) = agent_remote {
                        to_agent.apply(pkt);
                        if agent.send_to(pkt, dst).await.is_ok() {
                            m.counters.to_agent.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            r = agent.recv_from(&mut buf_out) => {
                let Ok((n, src)) = r else { continue };
                if bridged {
                    agent_remote = Some(src);
                    let pkt = &mut buf_out[..n];
                    if let Some(r) = recording.as_mut() {
                        if rtp::payload_type(pkt).is_some_and(|pt| Some(pt) != agent_dtmf) {
                            if let Some(p) = rtp::payload(pkt) {
                                r.rec.feed(Side::Agent, std::time::Instant::now(), p);
                            }
                        }
                    }
                    to_caller.apply(pkt);
                    if caller.send_to(pkt, caller_remote).await.is_ok() {
                        m.counters.to_caller.fetch_add(1, Relaxed);
                    }
                }
            }
            _ = tick.tick(), if !bridged => {
                let (frame, done) = player.next();
                if done {
                    report(MediaEvent::PromptDone { call: m.start.call });
                }
                let Some(frame) = frame else { continue };
                let mut out = [0u8; 256];
                let n = sender.packet(&frame, &mut out);
                if caller.send_to(&out[..n], caller_remote).await.is_ok() {
                    m.counters.prompt_frames.fetch_add(1, Relaxed);
                    if matches!(player.playing, Playing::Once(_)) {
                        m.counters.once_frames.fetch_add(1, Relaxed);
                    }
                }
            }
            _ = check.tick() => {
                if let Some(r) = recording.as_mut() {
                    let ready = r.rec.take_ready(std::time::Instant::now());
                    r.write(&ready);
                }
                if last_rx.elapsed() > m.rtp_timeout {
                    report(MediaEvent::Timeout { call: m.start.call });
                    return;
                }
            }
            c = ctl.recv() => match c {
                Some(MediaCtl::Bridge { agent_remote: r, agent_codec_pt, agent_dtmf_pt, record }) => {
                    agent_dtmf = agent_dtmf_pt;
                    if let (None, Some(path)) = (&recording, record) {
                        match RecordingFile::create(path.clone(), m.start.codec) {
                            Ok(f) => recording = Some(f),
                            Err(e) => warn!(path = %path.display(), error = %e, "cannot record this call"),
                        }
                    }
                    agent_remote = Some(r);
                    to_agent = PtMap::identity();
                    to_caller = PtMap::identity();
                    to_agent.0[(m.start.codec_pt & 0x7f) as usize] = agent_codec_pt & 0x7f;
                    to_caller.0[(agent_codec_pt & 0x7f) as usize] = m.start.codec_pt & 0x7f;
                    if let (Some(c), Some(a)) = (m.start.dtmf_pt, agent_dtmf_pt) {
                        to_agent.0[(c & 0x7f) as usize] = a & 0x7f;
                        to_caller.0[(a & 0x7f) as usize] = c & 0x7f;
                    }
                    bridged = true;
                }
                Some(MediaCtl::Hold) => {
                    bridged = false;
                    player.set(Playing::Hold);
                }
                Some(MediaCtl::Play(p)) => {
                    bridged = false;
                    player.set(Playing::Once(p));
                }
                Some(MediaCtl::Stop) | None => return,
            },
        }
    }
}
