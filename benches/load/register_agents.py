#!/usr/bin/env python3
"""Registers agents FIRST..FIRST+N-1 (password PW) with acd, all pointing at one SIPp UAS port.

usage: register_agents.py ACD_HOST:PORT FIRST N PW CONTACT_PORT
Digest MD5 or SHA-256 (whichever acd offers first), qop=auth. Stdlib only.
"""
import hashlib, os, random, re, socket, sys

host, port = sys.argv[1].rsplit(":", 1)
# The address the phones are on (the cluster test bed's load namespace); loopback otherwise.
local = os.environ.get("LOCAL_IP", "127.0.0.1")
first, n, pw, cport = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((local, 0))
s.settimeout(3)
me = s.getsockname()[1]
srv = (host, int(port))


def send(user, cseq, cid, auth=""):
    b = "z9hG4bK%x" % random.getrandbits(64)
    m = (f"REGISTER sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local}:{me};branch={b};rport\r\n"
         f"From: <sip:{user}@{host}>;tag=r{user}\r\nTo: <sip:{user}@{host}>\r\nCall-ID: {cid}\r\n"
         f"CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{local}:{cport}>\r\nExpires: 3600\r\n"
         f"Max-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n")
    s.sendto(m.encode(), srv)
    while True:
        d = s.recv(65535).decode(errors="replace")
        if f"Call-ID: {cid}" in d:
            return d


for i in range(first, first + n):
    user, cid = str(i), "reg-%d-%x" % (i, random.getrandbits(32))
    ch = send(user, 1, cid)
    line = next(l for l in ch.split("\r\n") if l.startswith("WWW-Authenticate"))
    alg = re.search(r"algorithm=([\w-]+)", line).group(1)
    realm = re.search(r'realm="([^"]*)"', line).group(1)
    nonce = re.search(r'nonce="([^"]*)"', line).group(1)
    h = (lambda x: hashlib.sha256(x.encode()).hexdigest()) if alg == "SHA-256" else (lambda x: hashlib.md5(x.encode()).hexdigest())
    uri = f"sip:{host}:{port}"
    ha1, ha2 = h(f"{user}:{realm}:{pw}"), h(f"REGISTER:{uri}")
    resp = h(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}")
    auth = (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm={alg}, qop=auth, nc=00000001, cnonce="abc"\r\n')
    ok = send(user, 2, cid, auth)
    if not ok.startswith("SIP/2.0 200"):
        sys.exit(f"agent {user}: {ok.splitlines()[0]}")
print(f"registered {n} agents")
