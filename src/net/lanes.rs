//! The core's inbound queues (issue 11, overload control). Three lanes, read in priority order:
//!
//! 1. **control**: media events (`PromptDone`, `Dtmf`, `Timeout`), context answers, desk
//!    commands, TCP open/close; our own components, bounded by the number of calls;
//! 2. **dialog**: SIP that finishes or ends calls in progress (responses, ACK, CANCEL, BYE,
//!    re-INVITE: see [`crate::sip::lane`]);
//! 3. **fresh**: SIP that would start new work (new INVITE, REGISTER, OPTIONS), each stamped
//!    with the time it arrived.
//!
//! Timers come before all three. The core sheds fresh requests that waited longer than the
//! overload threshold with a stateless 503 + Retry-After: a message's time in the queue is what
//! says the core (or its CPU) is saturated, whatever the cause, and it costs nothing to measure.
//! A flood therefore delays only other new requests, never a call's BYE or its media events.

use crate::control::Input;
use crate::sip::lane::{lane, Lane};
use crate::sip::transaction::Peer;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Capacity of the control lane.
pub const CONTROL_QUEUE: usize = 65_536;
/// Capacity of the dialog lane.
pub const DIALOG_QUEUE: usize = 65_536;
/// Capacity of the fresh lane: at the overload threshold the core sheds a request in a few
/// microseconds, so this only fills under floods of ~100,000 new requests per second.
pub const FRESH_QUEUE: usize = 16_384;

/// A new request and when it arrived.
pub struct Fresh {
    pub at: Instant,
    pub peer: Peer,
    pub data: Bytes,
}

/// Fresh UDP requests dropped because their lane was full (never answered: the sender
/// retransmits, and answering would cost what we are short of).
#[derive(Debug, Default)]
pub struct LaneCounters {
    pub fresh_dropped: AtomicU64,
    pub dialog_dropped: AtomicU64,
}

/// Where the SIP readers put what they receive.
#[derive(Clone)]
pub struct SipInbox {
    dialog: mpsc::Sender<Input>,
    fresh: mpsc::Sender<Fresh>,
    counters: Arc<LaneCounters>,
}

/// The receiving ends, for the core.
pub struct Lanes {
    pub control: mpsc::Receiver<Input>,
    pub dialog: mpsc::Receiver<Input>,
    pub fresh: mpsc::Receiver<Fresh>,
}

/// The core's queues: the control sender (for [`crate::control::CoreHandle`]), the readers' inbox and
/// the receivers.
pub fn lanes(counters: Arc<LaneCounters>) -> (mpsc::Sender<Input>, SipInbox, Lanes) {
    let (control_tx, control) = mpsc::channel(CONTROL_QUEUE);
    let (dialog_tx, dialog) = mpsc::channel(DIALOG_QUEUE);
    let (fresh_tx, fresh) = mpsc::channel(FRESH_QUEUE);
    let inbox = SipInbox {
        dialog: dialog_tx,
        fresh: fresh_tx,
        counters,
    };
    (
        control_tx,
        inbox,
        Lanes {
            control,
            dialog,
            fresh,
        },
    )
}

/// What the core does next.
pub enum Next {
    /// The earliest timer is due.
    Timer,
    Input(Input),
    /// A new request that waited past the overload threshold: answer it 503.
    Shed(Fresh),
}

impl Lanes {
    /// Waits for the next thing to do, in priority order: a due timer, then control, then
    /// dialog, then fresh input. `None` once the control lane is closed (every handle gone).
    /// `overload_delay` zero never sheds.
    pub async fn next(
        &mut self,
        deadline: Option<Instant>,
        overload_delay: Duration,
    ) -> Option<Next> {
        let at = tokio::time::Instant::from_std(
            deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
        );
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(at), if deadline.is_some() => Some(Next::Timer),
            i = self.control.recv() => i.map(Next::Input),
            Some(i) = self.dialog.recv() => Some(Next::Input(i)),
            Some(f) = self.fresh.recv() => {
                let waited = Instant::now().saturating_duration_since(f.at);
                Some(if !overload_delay.is_zero() && waited > overload_delay {
                    Next::Shed(f)
                } else {
                    Next::Input(Input::Sip(f.peer, f.data))
                })
            }
        }
    }
}

/// The inbox is gone: the core stopped.
#[derive(Debug)]
pub struct Closed;

impl SipInbox {
    /// For UDP: never waits; a full lane drops the datagram (the sender retransmits).
    pub fn offer(&self, peer: Peer, data: Bytes) -> Result<(), Closed> {
        use mpsc::error::TrySendError::{Closed as Gone, Full};
        match lane(&data) {
            Lane::Dialog => match self.dialog.try_send(Input::Sip(peer, data)) {
                Err(Full(_)) => {
                    self.counters.dialog_dropped.fetch_add(1, Relaxed);
                    Ok(())
                }
                Err(Gone(_)) => Err(Closed),
                Ok(()) => Ok(()),
            },
            Lane::Fresh => {
                let f = Fresh {
                    at: Instant::now(),
                    peer,
                    data,
                };
                match self.fresh.try_send(f) {
                    Err(Full(_)) => {
                        self.counters.fresh_dropped.fetch_add(1, Relaxed);
                        Ok(())
                    }
                    Err(Gone(_)) => Err(Closed),
                    Ok(()) => Ok(()),
                }
            }
        }
    }

    /// For TCP: waits for room, which slows the connection down instead of losing a message
    /// its sender will not retransmit.
    pub async fn deliver(&self, peer: Peer, data: Bytes) -> Result<(), Closed> {
        match lane(&data) {
            Lane::Dialog => self
                .dialog
                .send(Input::Sip(peer, data))
                .await
                .map_err(|_| Closed),
            Lane::Fresh => {
                let f = Fresh {
                    at: Instant::now(),
                    peer,
                    data,
                };
                self.fresh.send(f).await.map_err(|_| Closed)
            }
        }
    }

    /// Fresh requests waiting now.
    pub fn fresh_waiting(&self) -> usize {
        self.fresh.max_capacity() - self.fresh.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::Transport;

    fn peer() -> Peer {
        Peer {
            transport: Transport::Udp,
            addr: "127.0.0.1:5060".parse().unwrap(),
        }
    }

    const INVITE: &[u8] = b"INVITE sip:100@acd SIP/2.0\r\nTo: <sip:100@acd>\r\n\r\n";
    const BYE: &[u8] = b"BYE sip:100@acd SIP/2.0\r\nTo: <sip:100@acd>;tag=a\r\n\r\n";

    fn what(n: Option<Next>) -> String {
        match n {
            None => "closed".into(),
            Some(Next::Timer) => "timer".into(),
            Some(Next::Shed(f)) => format!("shed {}", f.data.len()),
            Some(Next::Input(Input::Sip(_, d))) => format!("sip {}", d.len()),
            Some(Next::Input(Input::TcpClosed(_))) => "control".into(),
            Some(Next::Input(_)) => "other".into(),
        }
    }

    /// A flood of new requests waits behind timers, media and desk input and calls in progress,
    /// and what waited too long comes out as shed, not served.
    #[tokio::test]
    async fn flood_waits_behind_everything_else() {
        let (control, inbox, mut lanes) = lanes(Arc::default());
        let stamped = |ago: Duration| Fresh {
            at: Instant::now() - ago,
            peer: peer(),
            data: Bytes::from_static(b"INVITE"),
        };
        // The first waited long already; the rest arrive now.
        inbox
            .fresh
            .try_send(stamped(Duration::from_secs(1)))
            .unwrap();
        for _ in 0..100 {
            inbox.offer(peer(), Bytes::from_static(INVITE)).unwrap();
        }
        inbox.offer(peer(), Bytes::from_static(BYE)).unwrap();
        control
            .try_send(Input::TcpClosed("127.0.0.1:1".parse().unwrap()))
            .unwrap();
        let long = Duration::from_secs(60);
        let due = Some(Instant::now() - Duration::from_millis(1));
        assert_eq!(what(lanes.next(due, long).await), "timer");
        assert_eq!(what(lanes.next(None, long).await), "control");
        assert_eq!(
            what(lanes.next(None, long).await),
            format!("sip {}", BYE.len())
        );
        let shed_after = Duration::from_millis(500);
        assert_eq!(what(lanes.next(None, shed_after).await), "shed 6");
        assert_eq!(
            what(lanes.next(None, shed_after).await),
            format!("sip {}", INVITE.len())
        );
        // Zero never sheds, however long a request waited.
        inbox
            .fresh
            .try_send(stamped(Duration::from_secs(10)))
            .unwrap();
        for _ in 0..99 {
            assert_eq!(
                what(lanes.next(None, Duration::ZERO).await),
                format!("sip {}", INVITE.len())
            );
        }
        assert_eq!(what(lanes.next(None, Duration::ZERO).await), "sip 6");
        drop(control);
        assert_eq!(what(lanes.next(None, Duration::ZERO).await), "closed");
    }

    #[tokio::test]
    async fn a_full_fresh_lane_drops_and_counts_but_dialog_still_flows() {
        let counters = Arc::new(LaneCounters::default());
        let (_control, inbox, mut lanes) = lanes(counters.clone());
        for _ in 0..FRESH_QUEUE + 10 {
            inbox.offer(peer(), Bytes::from_static(INVITE)).unwrap();
        }
        assert_eq!(counters.fresh_dropped.load(Relaxed), 10);
        assert_eq!(inbox.fresh_waiting(), FRESH_QUEUE);
        inbox.offer(peer(), Bytes::from_static(BYE)).unwrap();
        let n = lanes.next(None, Duration::ZERO).await;
        assert_eq!(what(n), format!("sip {}", BYE.len()));
    }
}
