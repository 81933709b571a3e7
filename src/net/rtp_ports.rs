//! RTP sockets bound when their port is taken from the pool, kept here until the call's media
//! task picks them up (see [`crate::call::ports`]): a port in an SDP we sent is always one we
//! hold.

use crate::call::ports::PortBinder;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use tracing::debug;

/// Bound, not yet used RTP sockets by port. Shared by the pool's binder (in the core's
/// `CallManager`) and the code that starts media tasks (in the core too), so the lock is never
/// contended; it is a mutex only because the two halves are owned apart.
#[derive(Clone)]
pub struct Stash {
    ip: IpAddr,
    sockets: Arc<Mutex<HashMap<u16, UdpSocket>>>,
}

impl Stash {
    pub fn new(ip: IpAddr) -> Stash {
        Stash {
            ip,
            sockets: Arc::default(),
        }
    }

    /// The socket bound for `port`, handed over once.
    pub fn take(&self, port: u16) -> Option<UdpSocket> {
        self.lock().remove(&port)
    }

    /// Sockets bound and not yet taken.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u16, UdpSocket>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PortBinder for Stash {
    fn bind(&mut self, port: u16) -> bool {
        let bound = UdpSocket::bind(SocketAddr::new(self.ip, port))
            .and_then(|s| s.set_nonblocking(true).map(|()| s));
        match bound {
            Ok(s) => {
                self.lock().insert(port, s);
                true
            }
            Err(e) => {
                debug!(port, error = %e, "RTP port does not bind; trying another");
                false
            }
        }
    }

    fn release(&mut self, port: u16) {
        self.lock().remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::ports::PortPool;

    /// A port another program holds is never handed out; the pool's sockets are real and
    /// handed over once.
    #[test]
    fn a_port_held_elsewhere_is_skipped() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Find a free even port and its neighbour pair, then hold the first.
        let probe = UdpSocket::bind((ip, 0)).unwrap();
        let base = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        let squatter = UdpSocket::bind((ip, base)).expect("the even port is free");
        let stash = Stash::new(ip);
        let mut pool = PortPool::new(base, base + 4);
        pool.set_binder(Box::new(stash.clone()));
        let got = pool.take();
        assert_eq!(got, Some(base + 2), "the held port is skipped");
        let failures = pool.bind_failures;
        assert_eq!(pool.take(), None, "only the held port is left");
        assert_eq!(pool.bind_failures, failures + 1);
        let s = stash.take(base + 2).expect("its socket waits in the stash");
        assert_eq!(s.local_addr().unwrap().port(), base + 2);
        assert!(stash.take(base + 2).is_none(), "handed over once");
        drop(squatter);
        assert_eq!(pool.take(), Some(base), "free again once its holder let go");
        pool.give(base);
        pool.give(base + 2);
        assert_eq!(
            stash.held(),
            0,
            "giving a port back closes a socket nobody took"
        );
    }
}
