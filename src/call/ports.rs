//! RTP port pairs handed out from the configured range.
//!
//! A port is only handed out once it is known to bind: the network layer plugs in a
//! [`PortBinder`] that binds the socket at the moment the port is taken (before the port is
//! written into any SDP) and keeps it for the call's media task. A port some other program
//! holds is skipped and tried again later, instead of the call being hung up after its SDP has
//! promised a port we cannot open (issue 11, item 10).

use std::collections::VecDeque;

/// Binds RTP sockets for the pool. Implemented by `net`; sans-IO code and tests use none (every
/// port is assumed free) or a fake.
pub trait PortBinder: Send {
    /// Binds `port` now and keeps its socket until the media task takes it or [`release`] is
    /// called; false when the port cannot be bound.
    ///
    /// [`release`]: PortBinder::release
    fn bind(&mut self, port: u16) -> bool;
    /// The port went back to the pool: drop its socket if no media task took it.
    fn release(&mut self, port: u16);
}

/// Ports tried for one allocation before giving up (each failure moves the port to the back).
const BIND_ATTEMPTS: usize = 16;

/// Even ports (RTP; the odd one above is left for RTCP) from a range, in a random order, reused
/// FIFO so a port just released is not reused at once (late packets of the old call would leak
/// into the new one), and so the next call's port cannot be guessed from the last one's.
pub struct PortPool {
    free: VecDeque<u16>,
    binder: Option<Box<dyn PortBinder>>,
    /// Ports skipped because they would not bind.
    pub bind_failures: u64,
}

impl std::fmt::Debug for PortPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortPool")
            .field("free", &self.free.len())
            .field("binder", &self.binder.is_some())
            .finish()
    }
}

impl PortPool {
    pub fn new(low: u16, high: u16) -> PortPool {
        use rand::seq::SliceRandom;
        let start = low + (low & 1);
        let mut ports: Vec<u16> = (start..high).step_by(2).collect();
        ports.shuffle(&mut rand::thread_rng());
        PortPool {
            free: ports.into(),
            binder: None,
            bind_failures: 0,
        }
    }

    /// Checks every port handed out from now on with `binder`.
    pub fn set_binder(&mut self, binder: Box<dyn PortBinder>) {
        self.binder = Some(binder);
    }

    /// A port that binds, or none (the pool is empty, or the ports tried would not bind).
    pub fn take(&mut self) -> Option<u16> {
        for _ in 0..BIND_ATTEMPTS.min(self.free.len()) {
            let port = self.free.pop_front()?;
            let bound = self.binder.as_mut().is_none_or(|b| b.bind(port));
            if bound {
                return Some(port);
            }
            self.bind_failures += 1;
            self.free.push_back(port);
        }
        None
    }

    /// `port` itself, when it is free and binds: a call resumed after a restart keeps the
    /// ports its SDP named, so the phones' media arrives where it always did.
    pub fn take_exact(&mut self, port: u16) -> bool {
        let Some(i) = self.free.iter().position(|&p| p == port) else {
            return false;
        };
        if !self.binder.as_mut().is_none_or(|b| b.bind(port)) {
            self.bind_failures += 1;
            return false;
        }
        self.free.remove(i);
        true
    }

    /// Two ports (a call's caller and agent sides), or none.
    pub fn take_pair(&mut self) -> Option<(u16, u16)> {
        let a = self.take()?;
        match self.take() {
            Some(b) => Some((a, b)),
            None => {
                self.give(a);
                None
            }
        }
    }

    pub fn give(&mut self, port: u16) {
        if let Some(b) = &mut self.binder {
            b.release(port);
        }
        self.free.push_back(port);
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    #[test]
    fn even_ports_in_random_order_reused_fifo() {
        let mut p = PortPool::new(20001, 20008);
        assert_eq!(p.available(), 3);
        let mut seen: Vec<u16> = (0..3).filter_map(|_| p.take()).collect();
        seen.sort();
        assert_eq!(seen, vec![20002, 20004, 20006]);
        assert_eq!(p.take(), None);
        p.give(20004);
        p.give(20002);
        assert_eq!(p.take(), Some(20004), "the longest-free port first");
        // Two pools over a big range almost never start alike.
        let a: Vec<_> = (0..8)
            .filter_map(|_| PortPool::new(20000, 40000).take())
            .collect();
        let b: Vec<_> = (0..8)
            .filter_map(|_| PortPool::new(20000, 40000).take())
            .collect();
        assert_ne!(a, b);
    }

    /// A fake binder: some ports are held by another program.
    struct Busy {
        held: HashSet<u16>,
        bound: Arc<Mutex<Vec<u16>>>,
    }

    impl PortBinder for Busy {
        fn bind(&mut self, port: u16) -> bool {
            if self.held.contains(&port) {
                return false;
            }
            self.bound.lock().unwrap().push(port);
            true
        }
        fn release(&mut self, port: u16) {
            self.bound.lock().unwrap().retain(|&p| p != port);
        }
    }

    #[test]
    fn ports_that_do_not_bind_are_skipped_and_kept_for_later() {
        let mut p = PortPool::new(20000, 20010);
        let bound = Arc::new(Mutex::new(Vec::new()));
        p.set_binder(Box::new(Busy {
            held: [20000, 20002, 20004].into(),
            bound: bound.clone(),
        }));
        let (a, b) = p.take_pair().expect("two ports bind");
        assert!(a >= 20006 && b >= 20006 && a != b, "{a} {b}");
        assert_eq!(p.available(), 3, "the held ports stay in the pool");
        assert_eq!(bound.lock().unwrap().len(), 2);
        // Only held ports left: no pair, and the one bound port is released again.
        let failed = p.bind_failures;
        assert_eq!(p.take_pair(), None);
        assert_eq!(p.bind_failures, failed + 3);
        assert_eq!(bound.lock().unwrap().len(), 2);
        p.give(a);
        assert_eq!(bound.lock().unwrap().as_slice(), &[b]);
        assert_eq!(p.available(), 4);
    }
}
