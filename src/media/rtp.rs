//! Building and reading RTP packets (via rtp-rs) for our own streams: prompts and hold music.

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// State of one RTP stream we originate.
#[derive(Clone, Debug)]
pub struct Sender {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub pt: u8,
    marker_next: bool,
}

impl Sender {
    pub fn new(ssrc: u32, pt: u8) -> Sender {
        Sender {
            ssrc,
            seq: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            pt,
            marker_next: true,
        }
    }

    /// Writes one 20 ms packet with `payload` into `out`; returns its length.
    pub fn packet(&mut self, payload: &[u8], out: &mut [u8]) -> usize {
        let b = RtpPacketBuilder::new()
            .payload_type(self.pt)
            .ssrc(self.ssrc)
            .sequence(Seq::from(self.seq))
            .timestamp(self.timestamp)
            .marked(self.marker_next)
            .payload(payload);
        self.marker_next = false;
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        b.build_into(out).unwrap_or(0)
    }
}

/// Payload type of an RTP packet, or `None` if it is not RTP (e.g. RTCP or garbage).
pub fn payload_type(pkt: &[u8]) -> Option<u8> {
    let r = RtpReader::new(pkt).ok()?;
    let pt = r.payload_type();
    // RTCP packet types 200–204 show up as PT 72–76 with the marker bit set.
    (!(72..=76).contains(&pt)).then_some(pt)
}

/// Payload of an RTP packet.
pub fn payload(pkt: &[u8]) -> Option<&[u8]> {
    RtpReader::new(pkt).ok().map(|r| r.payload())
}

/// RTP timestamp, used to tell DTMF events apart.
pub fn timestamp(pkt: &[u8]) -> Option<u32> {
    RtpReader::new(pkt).ok().map(|r| r.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_advances_seq_and_timestamp() {
        let mut s = Sender::new(0x1234_5678, 0);
        let mut buf = [0u8; 200];
        let n = s.packet(&[0xff; 160], &mut buf);
        assert_eq!(n, 172);
        let r = RtpReader::new(&buf[..n]).unwrap();
        assert!(r.mark());
        let (seq1, ts1) = (u16::from(r.sequence_number()), r.timestamp());
        let n = s.packet(&[0xff; 160], &mut buf);
        let r = RtpReader::new(&buf[..n]).unwrap();
        assert_eq!(u16::from(r.sequence_number()), seq1.wrapping_add(1));
        assert_eq!(r.timestamp(), ts1.wrapping_add(160));
        assert_eq!(payload_type(&buf[..n]), Some(0));
    }
}
