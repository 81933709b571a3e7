#!/usr/bin/env python3
"""Writes a pcap of one RTP stream (PCMU, 20 ms packets, a 400 Hz tone) for SIPp's
play_pcap_audio: the test bed's callers talk for the whole call, so a takeover's audio gap
shows in the capture. usage: rtp_pcap.py OUT.pcap SECONDS"""
import math
import struct
import sys


def ulaw(sample):
    # G.711 µ-law of a 16-bit sample.
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exp = 7
    mask = 0x4000
    while exp > 0 and not sample & mask:
        exp -= 1
        mask >>= 1
    mant = (sample >> (exp + 3)) & 0x0F
    return ~(sign | (exp << 4) | mant) & 0xFF


def main():
    out, secs = sys.argv[1], float(sys.argv[2])
    tone = bytes(ulaw(int(8000 * math.sin(2 * math.pi * 400 * n / 8000))) for n in range(160 * 20))
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for k in range(int(secs * 50)):
            payload = tone[(k % 20) * 160:(k % 20 + 1) * 160]
            rtp = struct.pack("!BBHII", 0x80, 0, k & 0xFFFF, (k * 160) & 0xFFFFFFFF, 0x5EED) + payload
            udp = struct.pack("!HHHH", 30000, 6000, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), k & 0xFFFF, 0, 64, 17, 0,
                             bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + udp
            eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip
            t = k * 0.02
            f.write(struct.pack("<IIII", int(t), int(round((t % 1) * 1e6)) % 1000000, len(eth), len(eth)))
            f.write(eth)


if __name__ == "__main__":
    main()
