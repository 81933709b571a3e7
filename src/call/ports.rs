//! RTP port pairs handed out from the configured range.

use std::collections::VecDeque;

/// Even ports (RTP; the odd one above is left for RTCP) from a range, reused FIFO so a port just
/// released is not reused at once (late packets of the old call would leak into the new one).
#[derive(Debug)]
pub struct PortPool {
    free: VecDeque<u16>,
}

impl PortPool {
    pub fn new(low: u16, high: u16) -> PortPool {
        let start = low + (low & 1);
        PortPool {
            free: (start..high).step_by(2).collect(),
        }
    }

    pub fn take(&mut self) -> Option<u16> {
        self.free.pop_front()
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
        self.free.push_back(port);
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn even_ports_fifo() {
        let mut p = super::PortPool::new(20001, 20008);
        assert_eq!(p.available(), 3);
        assert_eq!(p.take(), Some(20002));
        p.give(20002);
        assert_eq!(p.take(), Some(20004));
    }
}
