//! SIP transports: one UDP socket and one TCP listener on the same address. Received messages go
//! to the core through its [`SipInbox`] lanes; TCP connections register a writer (on the control
//! lane) so answers go back on them.

use super::lanes::SipInbox;
use crate::control::Input;
use crate::sip::framing::{Frame, StreamFramer};
use crate::sip::transaction::{Peer, Transport};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, warn};

/// A TLS client must finish its handshake within this.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Socket buffer for the SIP UDP socket: bursts of thousands of messages must queue in the
/// kernel, not be dropped there (the default ~208 KB overflows at a few thousand calls/s).
const UDP_BUFFER: usize = 4 << 20;

/// Binds the SIP UDP socket with large buffers. The kernel may cap the size (net.core.rmem_max);
/// that is logged, not fatal.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    for (what, r) in [
        ("receive", sock.set_recv_buffer_size(UDP_BUFFER)),
        ("send", sock.set_send_buffer_size(UDP_BUFFER)),
    ] {
        if let Err(e) = r {
            warn!(error = %e, "could not enlarge the SIP UDP {what} buffer");
        }
    }
    sock.bind(&addr.into())?;
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

/// Reads datagrams forever; a full lane drops the datagram (UDP loss, the peer retransmits).
pub async fn udp_reader(sock: Arc<UdpSocket>, inbox: SipInbox) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let peer = Peer {
                    transport: Transport::Udp,
                    addr: from,
                };
                if inbox
                    .offer(peer, Bytes::copy_from_slice(&buf[..n]))
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port unreachable surfaces here on some systems; keep reading.
            Err(e) => debug!(error = %e, "udp recv"),
        }
    }
}

/// TCP limits.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    pub max_connections: usize,
    /// Connections one untrusted source address may hold (0: no per-source limit).
    pub max_per_source: usize,
    pub idle: Duration,
    pub max_message: usize,
}

/// Connections refused by the limits, for `/metrics`.
#[derive(Debug, Default)]
pub struct TcpCounters {
    pub refused_total: AtomicU64,
    pub refused_per_source: AtomicU64,
}

/// Open connections per source address; an entry goes with its last connection, so the map
/// never holds more entries than `max_connections`.
type PerSource = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Accepts SIP connections: plain TCP, or TLS when `tls` holds a certificate (the handshake
/// must finish within 10 s; the same connection caps apply to both).
#[allow(clippy::too_many_arguments)]
pub async fn tcp_acceptor(
    listener: TcpListener,
    tls: Option<crate::tls::CertStore>,
    to_core: mpsc::Sender<Input>,
    inbox: SipInbox,
    limits: TcpLimits,
    trusted: Arc<Vec<crate::sip::budget::Cidr>>,
    counters: Arc<TcpCounters>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_source: PerSource = Arc::default();
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            counters.refused_total.fetch_add(1, Relaxed);
            warn!(%addr, "TCP connection limit reached; closing");
            continue;
        };
        let ip = addr.ip();
        let limited = limits.max_per_source > 0 && !trusted.iter().any(|c| c.contains(ip));
        if limited {
            let mut m = per_source.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_default();
            if *n >= limits.max_per_source {
                counters.refused_per_source.fetch_add(1, Relaxed);
                debug!(%addr, "TCP connections per source reached; closing");
                continue;
            }
            *n += 1;
        }
        let (to_core, inbox, per_source) = (to_core.clone(), inbox.clone(), per_source.clone());
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match acceptor {
                None => connection(stream, addr, Transport::Tcp, to_core, inbox, limits).await,
                Some(a) => match tokio::time::timeout(HANDSHAKE, a.accept(stream)).await {
                    Ok(Ok(s)) => connection(s, addr, Transport::Tls, to_core, inbox, limits).await,
                    Ok(Err(e)) => debug!(%addr, error = %e, "TLS handshake failed"),
                    Err(_) => debug!(%addr, "TLS handshake timed out"),
                },
            }
            if limited {
                let mut m = per_source.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(n) = m.get_mut(&ip) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&ip);
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Opens a connection to a peer we must send to but have no connection with (§18.1.1).
/// Failure is reported as [`Input::TcpClosed`], so queued messages are dropped with a warning.
pub async fn connect_out(
    addr: SocketAddr,
    to_core: mpsc::Sender<Input>,
    inbox: SipInbox,
    limits: TcpLimits,
) {
    match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            connection(stream, addr, Transport::Tcp, to_core, inbox, limits).await
        }
        Ok(Err(e)) => {
            debug!(%addr, error = %e, "TCP connect failed");
            let _ = to_core.send(Input::TcpClosed(addr)).await;
        }
        Err(_) => {
            debug!(%addr, "TCP connect timed out");
            let _ = to_core.send(Input::TcpClosed(addr)).await;
        }
    }
}

/// One SIP connection (TCP or TLS) until it closes, idles out or breaks framing.
async fn connection<S>(
    stream: S,
    addr: SocketAddr,
    transport: Transport,
    to_core: mpsc::Sender<Input>,
    inbox: SipInbox,
    limits: TcpLimits,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    if to_core
        .send(Input::TcpOpen(addr, tx.clone()))
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let peer = Peer { transport, addr };
    let mut framer = StreamFramer::new(limits.max_message);
    let mut buf = vec![0u8; 16_384];
    'conn: loop {
        let n = match tokio::time::timeout(limits.idle, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => {
                    if inbox.deliver(peer, m).await.is_err() {
                        break 'conn;
                    }
                }
                Ok(Some(Frame::Ping)) => {
                    let _ = tx.try_send(Bytes::from_static(b"\r\n"));
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(%addr, error = %e, "closing TCP connection");
                    break 'conn;
                }
            }
        }
    }
    writer.abort();
    let _ = to_core.send(Input::TcpClosed(addr)).await;
}
