//! `acd.toml` → [`Config`]. Every field has a default, so `acd serve` runs with no file at all;
//! command-line flags override the file.

use crate::sip::auth::Algorithm;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {msg}")]
    Invalid {
        file: String,
        line: usize,
        msg: String,
    },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub media: MediaConfig,
    pub context: ContextConfig,
    pub reports: ReportsConfig,
    /// `[[trunk]]`: where PSTN calls come from (believed about the caller's number, and never
    /// budgeted or capped per source).
    pub trunk: Vec<crate::call::Trunk>,
    /// The server certificate for SIP over TLS and HTTPS (`[tls]`).
    pub tls: TlsConfig,
    /// Calls across restarts (`[calls]`).
    pub calls: CallsConfig,
    /// Path of the dialplan; the built-in demo plan is used when this default file is absent.
    pub dialplan: PathBuf,
    /// `[cluster]`: run as one node of several (absent: one box, no NATS).
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// Where the certificate comes from; both files are read again on SIGHUP.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// What happens to calls in progress when acd stops.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// Write a snapshot of every call as it changes, so a process that dies (crash, OOM kill)
    /// is followed by one that takes its calls over.
    pub snapshots: bool,
    /// On SIGTERM: `end` every call (BYE, 503, CANCEL), or `resume`: leave them to the next
    /// start, which takes them over (an upgrade callers do not hear; needs `snapshots`).
    pub shutdown: ShutdownMode,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            snapshots: true,
            shutdown: ShutdownMode::End,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownMode {
    #[default]
    End,
    Resume,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP and TCP, same port.
    pub listen: SocketAddr,
    /// SIP over TLS (`[tls]` must name a certificate); usually port 5061. None: no TLS.
    pub tls_listen: Option<SocketAddr>,
    /// Address written into Via, Contact and SDP. Defaults to the listen address, or 127.0.0.1
    /// when listening on all interfaces (set it to the LAN address for phones on other hosts).
    pub advertise: Option<IpAddr>,
    pub realm: String,
    /// Digest algorithms offered, preferred first (RFC 8760). SIPp 3.6 only does MD5 and takes
    /// the first challenge, so put MD5 first if SIPp agents must register.
    pub auth_algorithms: Vec<Algorithm>,
    pub nonce_ttl_s: u64,
    pub min_expires_s: u32,
    pub max_expires_s: u32,
    /// Phones one agent may have registered at once (all ring); one more replaces the
    /// phone that refreshed longest ago.
    pub max_phones_per_agent: usize,
    pub max_message_bytes: usize,
    pub tcp_max_connections: usize,
    pub tcp_idle_timeout_s: u64,
    /// RFC 3261 T1 in milliseconds (retransmission base).
    pub t1_ms: u64,
    /// Wrong digest answers from one address within a minute before it is refused (403)…
    pub auth_max_failures: u32,
    /// …for this many seconds (0 turns the ban off).
    pub auth_ban_s: u64,
    /// Ping registered agent phones with OPTIONS every this many seconds; a phone that does not
    /// answer within 5 s is taken out of the queues until it does (0 turns this off).
    pub qualify_s: u64,
    /// Requests per second one source (an IPv4 address, an IPv6 /64) may send, per kind; past
    /// it 503 + Retry-After, past `flood_drop_factor` times it no answer at all (0: unlimited).
    pub invite_per_s: u32,
    pub register_per_s: u32,
    pub options_per_s: u32,
    pub other_per_s: u32,
    pub flood_drop_factor: u32,
    /// Retry-After of every 503 acd sends for load (budgets, caps, overload).
    pub retry_after_s: u32,
    /// Trusted peers (trunks, the Kamailio edge): addresses or CIDRs never budgeted or capped.
    pub trusted: Vec<crate::sip::budget::Cidr>,
    /// Server transactions alive at once for new work (each ~1-3 KB, kept up to 32 s); past
    /// it 503. In-dialog requests (BYE, re-INVITE) may use twice as many.
    pub max_transactions: usize,
    /// Calls in progress at once, and from one untrusted source address; past them 503.
    pub max_calls: usize,
    pub max_calls_per_source: usize,
    /// TCP connections one source address may hold open.
    pub tcp_max_per_source: usize,
    /// Overload control: a new request (INVITE, REGISTER, OPTIONS) that waited longer than this
    /// in the core's queue gets 503 + Retry-After instead of being served; calls in progress
    /// are never shed (0: never shed).
    pub overload_delay_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextConfig {
    /// ISO country whose dialling rules turn national numbers into E.164 (see `context::e164`).
    pub default_country: String,
    /// The whole caller lookup must answer within this many milliseconds, or the call goes on
    /// without context (0: do not look callers up).
    pub lookup_budget_ms: u64,
    /// External sources asked in parallel with the database (`[[context.http]]`).
    pub http: Vec<crate::context::http_source::HttpSource>,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            default_country: "US".into(),
            lookup_budget_ms: 150,
            http: Vec::new(),
        }
    }
}

/// Thresholds behind the queue figures (wallboard and `acd report queues`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// Service level: answered within this many seconds.
    pub service_level_s: u64,
    /// Callers who hang up sooner are not counted against the service level or abandonment.
    pub short_abandon_s: u64,
    /// First-contact resolution: the number does not call again within this many days.
    pub fcr_days: u64,
    /// A caller who got several campaigns counts for the `latest` send (default) or the `first`.
    pub attribution: crate::context::attribution::Attribution,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            service_level_s: 20,
            short_abandon_s: 5,
            fcr_days: 7,
            attribution: Default::default(),
        }
    }
}

impl ReportsConfig {
    pub fn thresholds(&self) -> crate::report::queues::Thresholds {
        crate::report::queues::Thresholds {
            sl_s: self.service_level_s,
            short_abandon_s: self.short_abandon_s,
            fcr_days: self.fcr_days,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Serve the desk over HTTPS with the `[tls]` certificate, with HSTS (false: plain HTTP,
    /// for a reverse proxy that terminates TLS, or loopback).
    pub https: bool,
    /// Desk sessions last this long after log-in.
    pub session_ttl_s: u64,
    /// Failed desk log-ins allowed per address or account within `login_window_s`.
    pub login_failures: usize,
    pub login_window_s: u64,
    /// A fixed bearer token for Prometheus to scrape `/metrics` with.
    pub metrics_token: Option<String>,
    /// The longest an agent's phone waits for the screen pop to reach their desk (ms).
    pub pop_wait_ms: u64,
    /// Agents take calls as soon as their phone registers, without a desk (true), or only
    /// after clicking Ready at the desk (false, the default).
    pub ready_on_register: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    /// How often agent changes made with `acd agents …` are picked up by a running server.
    pub reload_s: u64,
    /// Where history batches wait while the database is unreachable (replayed when it answers).
    pub spool_dir: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// `LOW-HIGH`; each call takes two even ports.
    pub rtp_ports: String,
    /// A call whose caller sends no RTP for this long is hung up.
    pub rtp_timeout_s: u64,
    /// 8 kHz mono 16-bit WAV played once when a caller is queued (built-in chime if unset).
    pub welcome: Option<PathBuf>,
    /// 8 kHz mono 16-bit WAV looped while waiting (built-in melody if unset).
    pub hold_music: Option<PathBuf>,
    /// Recordings of queues with `record = true` go here, one WAV per call.
    pub recordings_dir: PathBuf,
    /// Recordings older than this are deleted (0: kept forever).
    pub recording_retention_days: u64,
    /// A NAT address (not the SDP's) may be learnt this long after a leg starts or is
    /// re-signalled; after that only the SDP address can be.
    pub learn_window_ms: u64,
    /// Consecutive packets of one stream a NAT source must send before it is learnt.
    pub learn_probation: u8,
    /// Which sources besides the SDP address may be learnt: "signalling-ip", "any" or "off".
    pub nat_learning: crate::media::bridge::NatLearning,
    /// Follow a locked stream (same SSRC, next sequence numbers) to a new source.
    pub follow_ssrc: bool,
}

impl MediaConfig {
    /// The bridge's learning rules.
    pub fn learn(&self) -> crate::media::bridge::LearnConfig {
        crate::media::bridge::LearnConfig {
            window: std::time::Duration::from_millis(self.learn_window_ms),
            probation: self.learn_probation.max(1),
            nat: self.nat_learning,
            follow_ssrc: self.follow_ssrc,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sip: SipConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            media: MediaConfig::default(),
            context: ContextConfig::default(),
            reports: ReportsConfig::default(),
            trunk: Vec::new(),
            tls: TlsConfig::default(),
            calls: CallsConfig::default(),
            dialplan: PathBuf::from("dialplans/default.toml"),
            cluster: None,
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            tls_listen: None,
            advertise: None,
            realm: "acd".into(),
            auth_algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_ttl_s: 300,
            min_expires_s: 60,
            max_expires_s: 7200,
            max_phones_per_agent: 10,
            max_message_bytes: 65_535,
            tcp_max_connections: 1024,
            tcp_idle_timeout_s: 600,
            t1_ms: 500,
            qualify_s: 30,
            auth_max_failures: 20,
            auth_ban_s: 300,
            invite_per_s: 20,
            register_per_s: 20,
            options_per_s: 20,
            other_per_s: 200,
            flood_drop_factor: 3,
            retry_after_s: 5,
            trusted: Vec::new(),
            max_transactions: 100_000,
            max_calls: 10_000,
            max_calls_per_source: 20,
            tcp_max_per_source: 32,
            overload_delay_ms: 50,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            https: false,
            session_ttl_s: 12 * 3600,
            login_failures: 5,
            login_window_s: 300,
            metrics_token: None,
            pop_wait_ms: 250,
            ready_on_register: false,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://acd.db".into(),
            reload_s: 5,
            spool_dir: PathBuf::from("acd-spool"),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_ports: "20000-29999".into(),
            rtp_timeout_s: 60,
            welcome: None,
            hold_music: None,
            recordings_dir: PathBuf::from("recordings"),
            recording_retention_days: 90,
            learn_window_ms: 5000,
            learn_probation: 3,
            nat_learning: crate::media::bridge::NatLearning::SignallingIp,
            follow_ssrc: false,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, file) = crate::toml_source::read(path)
            .map_err(|(file, source)| ConfigError::Io { file, source })?;
        Config::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let invalid = |line, msg| ConfigError::Invalid {
            file: file.to_string(),
            line,
            msg,
        };
        let cfg: Config = crate::toml_source::parse(text).map_err(|(l, m)| invalid(l, m))?;
        cfg.rtp_range()
            .map_err(|msg| invalid(crate::toml_source::line_of(text, "rtp_ports"), msg))?;
        crate::context::e164::Country::by_iso(&cfg.context.default_country).map_err(|e| {
            invalid(
                crate::toml_source::line_of(text, "default_country"),
                e.to_string(),
            )
        })?;
        if let Some(c) = &cfg.cluster {
            c.validate().map_err(|e| {
                invalid(
                    crate::toml_source::line_of(text, "[cluster]"),
                    e.to_string(),
                )
            })?;
        }
        Ok(cfg)
    }

    /// The RTP port range as numbers.
    pub fn rtp_range(&self) -> Result<(u16, u16), String> {
        parse_range(&self.media.rtp_ports)
    }

    /// The address peers should send to.
    pub fn advertise(&self) -> IpAddr {
        self.sip.advertise.unwrap_or_else(|| {
            let ip = self.sip.listen.ip();
            if ip.is_unspecified() {
                IpAddr::from([127, 0, 0, 1])
            } else {
                ip
            }
        })
    }
}

/// Parses `LOW-HIGH` with at least two ports.
pub fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("rtp_ports '{s}' must be LOW-HIGH with 1024 <= LOW < HIGH <= 65535");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if a < 1024 || b <= a + 2 {
        return Err(bad());
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse(
            "[sip]\nlisten = \"127.0.0.1:5070\"\nauth_algorithms = [\"MD5\"]\n",
            "a.toml",
        )
        .unwrap();
        assert_eq!(c.sip.listen.port(), 5070);
        assert_eq!(c.sip.auth_algorithms, vec![Algorithm::Md5]);
        assert_eq!(c.advertise().to_string(), "127.0.0.1");
        assert_eq!(c.rtp_range().unwrap(), (20000, 29999));
    }

    #[test]
    fn errors_name_the_line() {
        let e = Config::parse("[sip]\nrealm = \"x\"\nlisten = 5\n", "a.toml").unwrap_err();
        assert!(e.to_string().starts_with("a.toml:3:"), "{e}");
        let e = Config::parse("[media]\nrtp_ports = \"9-8\"\n", "a.toml").unwrap_err();
        assert!(e.to_string().starts_with("a.toml:2:"), "{e}");
        let e = Config::parse(
            "[sip]\nrealm = \"x\"\n[cluster]\nnode = \"a b\"\n",
            "a.toml",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("a.toml:3: [cluster] node 'a b'"),
            "{e}"
        );
        let c = Config::parse("[cluster]\nnode = \"acd1\"\n", "a.toml").unwrap();
        assert_eq!(c.cluster.map(|c| c.node), Some("acd1".to_string()));
    }
}
