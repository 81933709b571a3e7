//! The relay's per-packet decision (`media::bridge`), the part of acd's RTP cost that is not
//! the kernel: a 20 ms G.711 packet from the agent to the caller, with both legs in the same
//! law (the fast path: a payload-type byte and the caller-stream restamp) and with the agent
//! in the other law (plus 160 table lookups).

use acd::media::bridge::{Bridge, Expect, LearnConfig};
use acd::media::recorder::Side;
use acd::sdp::Codec;
use criterion::{criterion_group, criterion_main, Criterion};
use std::net::SocketAddr;
use std::time::Instant;

fn expect(sdp: SocketAddr, codec: Codec) -> Expect {
    Expect {
        sdp,
        signalling: None,
        codec,
        codec_pt: codec.pt(),
        dtmf_pt: Some(101),
    }
}

fn bench(c: &mut Criterion) {
    let caller: SocketAddr = "192.0.2.5:4000".parse().unwrap();
    let agent: SocketAddr = "198.51.100.20:7000".parse().unwrap();
    let mut g = c.benchmark_group("bridge agent→caller packet");
    for (name, agent_law) in [("same law", Codec::Pcma), ("transcoded", Codec::Pcmu)] {
        let t0 = Instant::now();
        let mut b = Bridge::new(
            t0,
            LearnConfig::default(),
            expect(caller, Codec::Pcma),
            true,
        );
        b.bridge(t0, expect(agent, agent_law));
        let mut pkt = vec![0x80, agent_law.pt(), 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        pkt.extend((0..160).map(|i| i as u8));
        let mut seq = 1u16;
        g.bench_function(name, |bn| {
            bn.iter(|| {
                seq = seq.wrapping_add(1);
                pkt[1] = agent_law.pt();
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[8..12].copy_from_slice(&9u32.to_be_bytes());
                b.handle_packet(t0, Side::Agent, agent, &mut pkt)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
