#!/usr/bin/python3
"""A tiny authoritative DNS server on 127.0.0.1 (UDP) answering from a table,
for the discovery tests.  Standard library only.

usage: dnsfixture.py --zone FILE [--port 0] [--log FILE]

The first line on stdout is the UDP port.  Exits 0 on SIGTERM.

FILE is JSON: {NAME: ENTRY, ...} with names lower-case, no trailing dot.
ENTRY keys:
  "srv":  [[priority, weight, port, "target"], ...]   ("." = not offered)
  "a":    ["127.0.0.1", ...]
  "hostile": one of
     "garbage"   header says 3 answers, the rest is random bytes
     "rdlen"     an SRV record whose rdlength runs past the message end
     "loop"      an SRV record whose target is a compression pointer to itself
     "short"     an SRV record with 4 bytes of rdata
     "badname"   an SRV target with a space and a NUL in a label
     "servfail"  RCODE 2
Unknown names get NXDOMAIN; known names without records of the asked type
get an empty NOERROR answer.  Every query is logged as "QNAME TYPE".
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import sys

T_A, T_CNAME, T_SRV = 1, 5, 33


def encode_name(name):
    out = b""
    if name not in ("", "."):
        for label in name.rstrip(".").split("."):
            b = label.encode()
            out += bytes([len(b)]) + b
    return out + b"\0"


def parse_question(msg):
    """(id, flags, qname, qtype, question bytes) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        return None
    i, labels = 12, []
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            return None
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[i:i + 4])
    return qid, flags, ".".join(labels).lower(), qtype, msg[12:i + 4]


def rr(name_bytes, rtype, rdata, ttl=60):
    return name_bytes + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def answer(zone, msg, rng):
    q = parse_question(msg)
    if q is None:
        return None
    qid, qflags, qname, qtype, question = q
    rd = qflags & 0x0100

    def header(rcode, an):
        return struct.pack("!HHHHHH", qid, 0x8400 | rd | 0x0080 | rcode,
                           1, an, 0, 0)

    entry = zone.get(qname)
    if entry is None:
        return header(3, 0) + question
    ptr = b"\xc0\x0c"  # the question's name
    hostile = entry.get("hostile")
    if hostile and qtype == T_SRV:
        if hostile == "servfail":
            return header(2, 0) + question
        if hostile == "garbage":
            return header(0, 3) + question + bytes(rng.randrange(256) for _ in range(40))
        if hostile == "rdlen":
            rdata = struct.pack("!HHH", 0, 0, 993) + encode_name("imap.x.test")
            rec = ptr + struct.pack("!HHIH", T_SRV, 1, 60, 200) + rdata
            return header(0, 1) + question + rec
        if hostile == "loop":
            # target pointer at its own offset
            off = 12 + len(question) + len(ptr) + 10 + 6
            rdata = struct.pack("!HHH", 0, 0, 993) + struct.pack("!H", 0xC000 | off)
            return header(0, 1) + question + rr(ptr, T_SRV, rdata)
        if hostile == "short":
            return header(0, 1) + question + rr(ptr, T_SRV, b"\0\0\0\0")
        if hostile == "badname":
            rdata = struct.pack("!HHH", 0, 0, 993) + b"\x0aevil h\0st!\x04test\0"
            return header(0, 1) + question + rr(ptr, T_SRV, rdata)
    recs = []
    if qtype == T_SRV:
        for prio, weight, port, target in entry.get("srv", []):
            rdata = struct.pack("!HHH", prio, weight, port) + encode_name(target)
            recs.append(rr(ptr, T_SRV, rdata))
    elif qtype == T_A:
        for ip in entry.get("a", []):
            recs.append(rr(ptr, T_A, socket.inet_aton(ip)))
    return header(0, len(recs)) + question + b"".join(recs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    a = ap.parse_args()
    with open(a.zone) as f:
        zone = {k.lower().rstrip("."): v for k, v in json.load(f).items()}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", a.port))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(s.getsockname()[1], flush=True)
    log = open(a.log, "a", buffering=1) if a.log else None
    rng = random.Random(6186)
    while True:
        msg, peer = s.recvfrom(4096)
        q = parse_question(msg)
        if log:
            log.write("%s %s\n" % ((q[2], q[3]) if q else ("?", "?")))
        reply = answer(zone, msg, rng)
        if reply is not None:
            s.sendto(reply, peer)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
