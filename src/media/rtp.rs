//! Building and reading RTP packets (via rtp-rs) for our own streams: prompts and hold music.

use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// State of one RTP stream we originate.
///
/// Towards the caller it is *the* stream of the leg: our prompts and hold music, and the
/// agent's packets re-written into it ([`Sender::relay`]) with our SSRC and continuing
/// sequence numbers and timestamps, so the caller's phone sees one stream from the
/// welcome chime to the hang-up (as Asterisk re-originates it), with the marker bit at each
/// change of source (RFC 3550 §5.1: the start of a talkspurt, where jitter buffers re-sync).
#[derive(Clone, Debug)]
pub struct Sender {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub pt: u8,
    marker_next: bool,
    /// The relayed stream being re-written: its SSRC and our offsets from its numbering.
    relayed: Option<Relayed>,
}

#[derive(Clone, Copy, Debug)]
struct Relayed {
    ssrc: u32,
    seq_delta: u16,
    ts_delta: u32,
}

impl Sender {
    pub fn new(ssrc: u32, pt: u8) -> Sender {
        Sender {
            ssrc,
            seq: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            pt,
            marker_next: true,
            relayed: None,
        }
    }

    /// The next packet changes source (relay ↔ our own audio, or a new agent): mark it and
    /// take new offsets.
    pub fn resync(&mut self) {
        self.marker_next = true;
        self.relayed = None;
    }

    /// Re-writes a relayed RTP packet (at least the 12-byte header, checked by the caller)
    /// into this stream: our SSRC, its sequence and timestamp shifted to continue ours, the
    /// marker on the first packet from a new source. Gaps and reordering in the source are kept
    /// as they are (offsets, not renumbering).
    pub fn relay(&mut self, pkt: &mut [u8]) {
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
        let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
        let r = match self.relayed {
            Some(r) if r.ssrc == ssrc => r,
            _ => {
                let r = Relayed {
                    ssrc,
                    seq_delta: self.seq.wrapping_sub(seq),
                    ts_delta: self.timestamp.wrapping_sub(ts),
                };
                self.relayed = Some(r);
                self.marker_next = true;
                r
            }
        };
        if self.marker_next {
            pkt[1] |= 0x80;
            self.marker_next = false;
        }
        let out_seq = seq.wrapping_add(r.seq_delta);
        let out_ts = ts.wrapping_add(r.ts_delta);
        pkt[2..4].copy_from_slice(&out_seq.to_be_bytes());
        pkt[4..8].copy_from_slice(&out_ts.to_be_bytes());
        pkt[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        // Our own next packet (after an unbridge) follows the newest one relayed.
        if (out_seq.wrapping_sub(self.seq) as i16) >= 0 {
            self.seq = out_seq.wrapping_add(1);
            self.timestamp = out_ts.wrapping_add(FRAME_SAMPLES as u32);
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
        self.relayed = None;
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

/// Where an RTP packet's payload lies: after the CSRCs and any header extension (RFC 3550
/// §5.1, §5.3.1), before the padding.
pub fn payload_range(pkt: &[u8]) -> Option<std::ops::Range<usize>> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let mut start = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let words = pkt.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = pkt.len();
    if pkt[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*pkt.last()?))?;
    }
    (start <= end).then_some(start..end)
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

    #[test]
    fn the_payload_range_skips_csrcs_extension_and_padding() {
        let mut p = vec![0x80u8; 12];
        p.extend([1, 2, 3]);
        assert_eq!(payload_range(&p), Some(12..15));
        // One CSRC, a one-word extension, two bytes of padding.
        let mut p = vec![0xb1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9];
        p.extend([0xbe, 0xde, 0, 1, 7, 7, 7, 7, 0xaa, 0xbb, 0, 2]);
        assert_eq!(payload_range(&p), Some(24..26));
        // Lies about its lengths: no payload, no panic.
        assert_eq!(
            payload_range(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]),
            None
        );
        assert_eq!(
            payload_range(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe]),
            None
        );
        assert_eq!(payload_range(&[0x8f; 12]), None);
    }

    fn relayed(ssrc: u32, seq: u16, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    fn read(p: &[u8]) -> (bool, u16, u32, u32) {
        let r = RtpReader::new(p).unwrap();
        (
            r.mark(),
            u16::from(r.sequence_number()),
            r.timestamp(),
            r.ssrc(),
        )
    }

    #[test]
    fn prompt_then_agent_then_prompt_is_one_stream_with_a_marker_at_each_switch() {
        let mut s = Sender::new(0xabcd_0001, 0);
        let mut buf = [0u8; 200];
        let n = s.packet(&[0xff; 160], &mut buf);
        let (_, seq0, ts0, _) = read(&buf[..n]);
        s.resync(); // bridged
        let mut a = relayed(0x5555, 40_000, 1_000_000);
        s.relay(&mut a);
        assert_eq!(read(&a), (true, seq0 + 1, ts0 + 160, 0xabcd_0001));
        let mut b = relayed(0x5555, 40_001, 1_000_160);
        s.relay(&mut b);
        assert_eq!(read(&b), (false, seq0 + 2, ts0 + 320, 0xabcd_0001));
        // A late packet keeps its place (the receiver's jitter buffer reorders it).
        let mut late = relayed(0x5555, 39_999, 999_840);
        s.relay(&mut late);
        assert_eq!(read(&late), (false, seq0, ts0, 0xabcd_0001));
        // The agent's phone restarts its stream (new SSRC): marker, still our numbering.
        let mut c = relayed(0x7777, 3, 50);
        s.relay(&mut c);
        assert_eq!(read(&c), (true, seq0 + 3, ts0 + 480, 0xabcd_0001));
        // Hold: our music goes on from there.
        s.resync();
        let n = s.packet(&[0xff; 160], &mut buf);
        assert_eq!(read(&buf[..n]), (true, seq0 + 4, ts0 + 640, 0xabcd_0001));
    }
}
