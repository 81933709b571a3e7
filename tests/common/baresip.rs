//! A real softphone for tests: baresip with a config made from tests/data/baresip (a copy of
//! shared/peers/baresip), its ports made unique, registering to a test server as `user`.

use super::*;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use tokio::process::Command;

/// How the phone registers and what it sends.
#[derive(Default)]
pub struct Phone {
    /// Register over TLS to this port (SIP/TLS), trusting this CA file. Such a phone also
    /// loads baresip's srtp module and does SRTP with SDES keys (acd offers SRTP to phones
    /// registered over TLS).
    pub tls: Option<(u16, PathBuf)>,
    /// The codecs it takes, in order (default `PCMA,PCMU`).
    pub codecs: Option<&'static str>,
    /// The sine it sends, in Hz (default 440).
    pub tone_hz: Option<u32>,
    /// Write what it hears to `dump-…-dec.wav` in its config dir (baresip's sndfile module).
    pub record: bool,
}

/// Writes a baresip config dir for `user`.
pub fn dir(srv: &TestServer, user: &str, phone: &Phone) -> PathBuf {
    dir_at(srv.dir.path(), srv.sip(), user, phone, true)
}

/// A config dir under `base` for `user` of the acd at `sip`; without `register` the account
/// only places calls (a caller, not an agent).
pub fn dir_at(base: &Path, sip: SocketAddr, user: &str, phone: &Phone, register: bool) -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/baresip");
    let dir = base.join(format!("baresip-{user}"));
    std::fs::create_dir_all(&dir).unwrap();
    let base = ports(60);
    let mut config = std::fs::read_to_string(shared.join("config"))
        .expect("tests/data/baresip/config")
        .lines()
        .map(|l| {
            let key = l.split_whitespace().next().unwrap_or("");
            match key {
                "sip_listen" => format!("sip_listen\t\t127.0.0.1:{base}"),
                "rtp_ports" => format!("rtp_ports\t\t{}-{}", base + 10, base + 49),
                "cons_listen" => format!("cons_listen\t\t127.0.0.1:{}", base + 2),
                "ctrl_tcp_listen" => format!("ctrl_tcp_listen\t\t127.0.0.1:{}", base + 4),
                "audio_source" => {
                    format!("audio_source\t\tausine,{}", phone.tone_hz.unwrap_or(440))
                }
                _ => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let (server, media) = match &phone.tls {
        Some((port, ca)) => {
            config.push_str(&format!(
                "\nsip_cafile\t\t{}\nmodule\t\t\tsrtp.so",
                ca.display()
            ));
            (
                format!("127.0.0.1:{port};transport=tls"),
                ";mediaenc=srtp-mand",
            )
        }
        None => (format!("127.0.0.1:{}", sip.port()), ""),
    };
    if phone.record {
        config.push_str(&format!(
            "\nmodule\t\t\tsndfile.so\nsnd_path\t\t{}",
            dir.display()
        ));
    }
    let codecs = phone.codecs.unwrap_or("PCMA,PCMU");
    let regint = if register { 600 } else { 0 };
    std::fs::write(dir.join("config"), config + "\n").unwrap();
    std::fs::write(
        dir.join("accounts"),
        format!(
            "<sip:{user}@{server}>;auth_pass={PASSWORD};answermode=auto;audio_codecs={codecs};regint={regint};ptime=20{media}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("contacts"), "").unwrap();
    dir
}

/// What the phone for `user` under `base` heard in the last `seconds` of its sndfile dump
/// (see [`super::tone::heard_in`]).
pub fn heard(base: &Path, user: &str, seconds: f64) -> Option<(f64, f64)> {
    let dir = base.join(format!("baresip-{user}"));
    let wav = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))?;
    super::tone::heard_in(&wav, seconds)
}

/// Starts baresip for `user`; its log is `baresip-<user>.log` in the server's directory.
pub fn spawn(srv: &TestServer, user: &str, phone: &Phone) -> tokio::process::Child {
    spawn_at(srv.dir.path(), srv.sip(), user, phone, true, &[])
}

/// Starts baresip for `user` of the acd at `sip`, its config and log under `base`, with
/// extra command-line `args` (`-e "/dial …"`, `-t SECONDS`).
pub fn spawn_at(
    base: &Path,
    sip: SocketAddr,
    user: &str,
    phone: &Phone,
    register: bool,
    args: &[&str],
) -> tokio::process::Child {
    let dir = dir_at(base, sip, user, phone, register);
    let log = std::fs::File::create(base.join(format!("baresip-{user}.log"))).unwrap();
    Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .arg("-v")
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("baresip is installed (apt-get install baresip-core)")
}
