#!/usr/bin/env python3
"""The test bed's count (benches/cluster/run.sh): callers offered/answered/lost, calls resumed,
the audio gap of each resumed call from the capture, double offers, queue-order inversions,
duplicate history rows, how soon new calls and dispatch came back after the fault, CPU per call.

usage: analyse.py WORKDIR SCENARIO NODES
Ends with one line:
  cluster: <scenario> nodes=N offered=N answered=N lost=N resumed=N double_offers=N
           inversions=N dup_rows=N gap_p95_ms=N gap_max_ms=N new_call_ms=N dispatch_ms=N
"""
import csv
import glob
import re
import struct
import sys
from datetime import datetime

CALLER_MEDIA = ("10.77.0.30", 30000)
SEP = "-----------------------------------------------"


def last_row(path):
    try:
        rows = list(csv.DictReader(open(path), delimiter=";"))
        return rows[-1] if rows else {}
    except OSError:
        return {}


def messages(path):
    """SIPp's -trace_msg log as (time, 'sent'|'received', first line, Call-ID, text)."""
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return
    k = 0
    while k < len(lines):
        l = lines[k]
        if not l.startswith(SEP) or k + 1 >= len(lines):
            k += 1
            continue
        try:
            t = datetime.strptime(" ".join(l.split()[-2:]), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            k += 1
            continue
        way = "sent" if "message sent" in lines[k + 1] else "received" if "message received" in lines[k + 1] else None
        j = k + 2
        block = []
        while j < len(lines) and not lines[j].startswith(SEP):
            block.append(lines[j])
            j += 1
        k = j
        text = block
        first = next((x for x in text if x.strip()), "")
        cid = next((x.split(":", 1)[1].strip() for x in text if x.lower().startswith("call-id:")), None)
        if way and cid:
            yield t, way, first, cid, "\n".join(text)


def sdp_addr(text):
    c = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    m = re.search(r"^m=audio (\d+)", text, re.M)
    return (c.group(1), int(m.group(1))) if c and m else None


def pcap_to(path, dst):
    """Times of the UDP packets to `dst` in a pcap, per source (ip, port)."""
    flows = {}
    try:
        f = open(path, "rb")
    except OSError:
        return flows
    head = f.read(24)
    if len(head) < 24:
        return flows
    endian = "<" if struct.unpack("<I", head[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = struct.unpack(endian + "I", head[:4])[0] == 0xA1B23C4D
    while True:
        h = f.read(16)
        if len(h) < 16:
            break
        sec, frac, incl, _ = struct.unpack(endian + "IIII", h)
        pkt = f.read(incl)
        if len(pkt) < 42 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
            continue
        ihl = (pkt[14] & 0x0F) * 4
        src = ".".join(str(b) for b in pkt[26:30])
        dip = ".".join(str(b) for b in pkt[30:34])
        sport, dport = struct.unpack("!HH", pkt[14 + ihl:14 + ihl + 4])
        if (dip, dport) == dst:
            flows.setdefault((src, sport), []).append(sec + frac / (1e9 if nano else 1e6))
    return flows


def pct(xs, p):
    return int(xs[int(p * (len(xs) - 1))]) if xs else "na"


def main():
    work, scen, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    c = last_row(f"{work}/callers.csv")
    offered = int(c.get("TotalCallCreated", 0) or 0)
    failed = int(c.get("FailedCall(C)", 0) or 0)

    # History: per interaction its queued time, connected time, terminal events.
    calls, rows = {}, {}
    try:
        for line in open(f"{work}/events.txt", errors="replace"):
            parts = line.rstrip("\n").split(" ", 4)
            if len(parts) < 5:
                continue
            i, _seq, at, kind, data = parts
            rows[(i, kind, data)] = rows.get((i, kind, data), 0) + 1
            r = calls.setdefault(i, {"queued": None, "connected": None, "ends": 0})
            if kind == "queued" and r["queued"] is None:
                r["queued"] = int(at)
            # A call taken over while talking was answered before (on the dead node).
            resumed_talking = kind == "call_resumed" and '"phase":"connected"' in data
            if (kind == "connected" or resumed_talking) and r["connected"] is None:
                r["connected"] = int(at)
            if kind in ("ended", "abandoned", "timed_out"):
                r["ends"] += 1
    except OSError:
        pass
    answered = sum(1 for r in calls.values() if r["connected"] is not None)
    # A call ended twice, or one event written twice (the same kind and data), is a duplicate.
    dup_rows = sum(1 for r in calls.values() if r["ends"] > 1) + sum(v - 1 for v in rows.values() if v > 1)
    resumed = 0
    for log in glob.glob(f"{work}/acd*.log"):
        text = re.sub(r"\x1b\[[0-9;]*m", "", open(log, errors="replace").read())
        for m in re.finditer(r"calls of a dead node taken over.*?resumed: (\d+)", text):
            resumed += int(m.group(1))
    try:
        double = open(f"{work}/kamailio.log", errors="replace").read().count("edge guard")
    except OSError:
        double = 0

    try:
        t_fault = float(open(f"{work}/fault_at").read())
    except (OSError, ValueError):
        t_fault = None
    gaps, no_audio, reinv_ms, new_call_ms, dispatch_ms = [], 0, [], "na", "na"
    if t_fault is not None:
        # Callers: the media each call's node answered with, and the takeover's.
        first_media, taken_media, invite_at, answered_at = {}, {}, {}, {}
        for t, way, first, cid, text in messages(f"{work}/callers-msgs.log"):
            if way == "sent" and first.startswith("INVITE "):
                invite_at.setdefault(cid, t)
            elif way == "received" and first.startswith("SIP/2.0 200") and "INVITE" in text and cid not in first_media:
                first_media[cid] = sdp_addr(text)
                answered_at.setdefault(cid, t)
            elif way == "received" and first.startswith("INVITE ") and t >= t_fault and cid not in taken_media:
                taken_media[cid] = (t, sdp_addr(text))
                reinv_ms.append((t - t_fault) * 1000)
        flows = pcap_to(f"{work}/load.pcap", CALLER_MEDIA)
        for cid, (t, new) in taken_media.items():
            old = first_media.get(cid)
            before = [x for x in flows.get(old, []) if x < t] if old else []
            after = [x for x in flows.get(new, []) if x >= t_fault] if new else []
            if not after:
                no_audio += 1
                continue
            # From the last packet the old node sent (about the fault) to the survivor's first.
            last = before[-1] if before else t_fault
            gaps.append((after[0] - last) * 1000)
        gaps.sort()
        reinv_ms.sort()
        # New calls: the longest wait for an answer among calls placed in the 10 s after it.
        setup = [answered_at[c] - t for c, t in invite_at.items() if t_fault <= t < t_fault + 10 and c in answered_at]
        new_call_ms = int(max(setup) * 1000) if setup else "na"
        # Dispatch: the first new offer to an agent after the fault.
        seen = set()
        for t, way, first, cid, _ in messages(f"{work}/agents-msgs.log"):
            if way != "received" or not first.startswith("INVITE "):
                continue
            if cid in seen:
                continue
            seen.add(cid)
            if t >= t_fault:
                dispatch_ms = int((t - t_fault) * 1000)
                break
        print(f"takeover re-INVITEs to callers: {len(reinv_ms)}, p95 {pct(reinv_ms, 0.95)} ms after the fault")
        print(f"audio gaps (capture): {len(gaps)} calls, p50 {pct(gaps, 0.5)} p95 {pct(gaps, 0.95)} "
              f"max {pct(gaps, 1.0)} ms; {no_audio} resumed calls with no audio after the takeover")

    # Dispatch: from acd's answer to the caller (it queues the call at once) to the offer
    # reaching an agent's phone, matched by the caller's number in the offer's From.
    answered_by_number, offers = {}, {}
    for t, way, first, cid, text in messages(f"{work}/callers-msgs.log"):
        if way == "received" and first.startswith("SIP/2.0 200") and "CSeq: 1 INVITE" in text:
            answered_by_number.setdefault(cid.split("-", 1)[0], t)
    for t, way, first, cid, text in messages(f"{work}/agents-msgs.log"):
        if way == "received" and first.startswith("INVITE ") and cid not in offers:
            m = re.search(r"^From:.*?sip:\+1555(\d+)@", text, re.M)
            if m:
                offers[cid] = (m.group(1), t)
    waits = sorted((t - answered_by_number[n]) * 1000 for n, t in offers.values() if n in answered_by_number)
    # Queue-order inversions, as the callers lived them: a caller offered an agent over 250 ms
    # after one who joined the line over a second later (one queue, one priority here). The
    # slack: joins closer than a second may cross on their way to the leader from different
    # nodes, and the leader's offers to its own callers ring at once while those to another
    # node's cross NATS first (a few ms; more while a new leader hears the nodes).
    inv = 0
    seen = sorted((t, answered_by_number[n]) for n, t in offers.values() if n in answered_by_number)
    for t, joined in seen:
        if any(j2 > joined + 1.0 and t2 < t - 0.25 for t2, j2 in seen):
            inv += 1
    if waits:
        print(f"answer to offer (dispatch through the partition's leader): {len(waits)} offers, "
              f"p50 {waits[len(waits) // 2]:.1f} p99 {waits[int(0.99 * (len(waits) - 1))]:.1f} ms")

    cpu = []
    for stat in sorted(glob.glob(f"{work}/acd*.cpu")):
        try:
            cpu.append(float(open(stat).read().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    if cpu and offered:
        print(f"cpu: {sum(cpu):.2f} s over {len(cpu)} nodes ({', '.join(f'{x:.2f}' for x in cpu)}), "
              f"{sum(cpu) / offered * 1000:.2f} ms per offered call")
    print(f"offered={offered} failed={failed} history_calls={len(calls)} answered={answered}")
    print(f"cluster: {scen} nodes={n} offered={offered} answered={answered} lost={failed} resumed={resumed} "
          f"double_offers={double} inversions={inv} dup_rows={dup_rows} gap_p95_ms={pct(gaps, 0.95)} "
          f"gap_max_ms={pct(gaps, 1.0)} no_audio={no_audio} new_call_ms={new_call_ms} dispatch_ms={dispatch_ms} "
          f"offer_p99_ms={waits[int(0.99 * (len(waits) - 1))] if waits else 'na':.4}")


if __name__ == "__main__":
    main()
