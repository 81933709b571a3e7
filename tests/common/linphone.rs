//! Linphone (Debian `linphone-cli`, liblinphone 5.1) as a phone: `linphonec` driven through its
//! stdin (held open for the phone's life), with a `HOME` of its own whose
//! `.local/share/linphone` exists (without it liblinphone 5.1 aborts its start and never opens
//! a SIP socket), in file mode: it sends a WAV file and records what it hears.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

/// A running linphonec.
pub struct Linphone {
    pub child: Child,
    stdin: ChildStdin,
    pub log: PathBuf,
}

impl Linphone {
    /// Types one console command.
    pub async fn command(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("linphonec reads its stdin");
        self.stdin.flush().await.unwrap();
    }

    /// Its console output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A mono 8 kHz WAV of `seconds` of a sine at `hz`, for a phone to send.
pub fn tone_wav(path: &Path, hz: f64, seconds: u32) {
    let n = 8000 * seconds;
    let mut w = Vec::with_capacity(44 + 2 * n as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let s = (2.0 * std::f64::consts::PI * hz * f64::from(i) / 8000.0).sin() * 8000.0;
        w.extend_from_slice(&(s as i16).to_le_bytes());
    }
    std::fs::write(path, w).unwrap();
}

/// Starts linphonec for `user` under `base` (its HOME, config and log there), sending a
/// `tone_hz` sine and recording to `record`; an agent registers to the acd at `sip` for
/// `expires` seconds, a caller (`None`) does not register.
pub async fn spawn(
    base: &Path,
    sip: SocketAddr,
    user: &str,
    tone_hz: f64,
    record: &Path,
    expires: Option<u32>,
) -> Linphone {
    let home = base.join(format!("linphone-{user}"));
    std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
    let port = super::ports(10);
    let rc = home.join("linphonerc");
    std::fs::write(
        &rc,
        format!(
            "[sip]\nsip_port={port}\nsip_tcp_port=-1\nsip_tls_port=-1\nbind_address=127.0.0.1\n\
             use_ipv6=0\ncontact=<sip:{user}@127.0.0.1:{port}>\n\
             [rtp]\naudio_rtp_port={}\nvideo_rtp_port={}\n[sound]\nechocancellation=0\n\
             [net]\nbind_address=127.0.0.1\n\
             [proxy_0]\nreg_proxy=<sip:{sip}>\nreg_identity=sip:{user}@{sip}\nreg_expires={}\n\
             reg_sendregister={}\npublish=0\n\
             [auth_info_0]\nusername={user}\npasswd={}\n",
            port + 2,
            port + 4,
            expires.unwrap_or(600),
            u8::from(expires.is_some()),
            super::PASSWORD
        ),
    )
    .unwrap();
    let tone = home.join("tone.wav");
    tone_wav(&tone, tone_hz, 30);
    let log = base.join(format!("linphone-{user}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new("linphonec")
        .arg("-c")
        .arg(&rc)
        .args(["-d", "0"])
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .expect("linphonec is installed (apt-get install linphone-cli)");
    let stdin = child.stdin.take().unwrap();
    let mut phone = Linphone { child, stdin, log };
    phone.command("soundcard use files").await;
    phone.command(&format!("play {}", tone.display())).await;
    phone.command(&format!("record {}", record.display())).await;
    phone.command("autoanswer enable").await;
    phone
}
