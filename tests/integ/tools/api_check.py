#!/usr/bin/python3
"""Client-side checks of mxsyncd's HTTP API for t-api.sh (loopback only).

  api_check.py sse --url URL --token TOK [--last-event-id ID] --out FILE
               [--seconds S]
      Reads a text/event-stream; appends one JSON line per event to FILE as
      it arrives: {"id","event","data","t_ms"} (t_ms: arrival, ms since the
      epoch), a line {"status": N, "content_type": "..."} first.  Ends after
      S seconds (default 60), at the end of the stream, or on SIGTERM.
  api_check.py longpoll --url URL --token TOK --out FILE [--until-type T]
      One GET; writes {"status","t_ms","body","polls"} to FILE when it is
      answered (t_ms: when the answer was complete).  With --until-type,
      an answer without an event of type T is followed by the next poll
      (after= its next_cursor) until one has it.
  api_check.py conns --port P --n N [--hold S]
      Opens N TCP connections to 127.0.0.1:P and sends each a partial
      request line; while they are open, GET /v1/version on a new
      connection; then closes them.  Prints {"opened","probe_status",
      "probe_ms","refused"} as JSON.
  api_check.py many --url URL --token TOK --n N
      N requests at once (one thread and connection each, all started
      before any is answered when the server holds them, e.g. long-polls);
      prints {"statuses": {"200": N, ...}, "max_ms": M} as JSON.
  api_check.py slow --port P [--interval S] [--max S]
      A slow client: sends a request's headers one byte every S seconds
      (default 1) and reports when the server closed the connection:
      {"closed_after_s", "sent", "reply"} (closed_after_s null when it was
      still open after --max seconds, default 60).
  api_check.py badserver
      An HTTP server on a free loopback port (printed as the first line)
      that answers every request 200 {"bogus": true}: what a proxy that
      validates answers must refuse.  Exits on SIGTERM.
  api_check.py expire-token --dir MXD --id ID
      Rewrites API token ID's record in the store (mdb_dump/mdb_load of the
      apitokens DB) so that it expired 60 s ago.
"""
import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request


def now_ms():
    return int(time.time() * 1000)


def cmd_sse(a):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    hdrs = {"Authorization": "Bearer " + a.token, "Accept": "text/event-stream"}
    if a.last_event_id is not None:
        hdrs["Last-Event-ID"] = a.last_event_id
    out = open(a.out, "a", buffering=1)
    req = urllib.request.Request(a.url, headers=hdrs)
    try:
        resp = urllib.request.urlopen(req, timeout=a.seconds)
    except urllib.error.HTTPError as e:
        out.write(json.dumps({"status": e.code, "content_type": e.headers.get("Content-Type"),
                              "body": e.read().decode("utf-8", "replace")}) + "\n")
        return 1
    out.write(json.dumps({"status": resp.status,
                          "content_type": resp.headers.get("Content-Type")}) + "\n")
    deadline = time.time() + a.seconds
    ev = {}
    data = []
    while time.time() < deadline and not stop.is_set():
        try:
            line = resp.readline()
        except (socket.timeout, TimeoutError):
            break
        if not line:
            break
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if ev or data:
                ev["data"] = "\n".join(data)
                ev["t_ms"] = now_ms()
                out.write(json.dumps(ev) + "\n")
            ev, data = {}, []
        elif line.startswith(":"):
            continue
        else:
            k, _, v = line.partition(":")
            v = v[1:] if v.startswith(" ") else v
            if k == "data":
                data.append(v)
            elif k in ("id", "event", "retry"):
                ev[k] = v
    return 0


def cmd_longpoll(a):
    url, polls = a.url, 0
    while True:
        polls += 1
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + a.token})
        try:
            resp = urllib.request.urlopen(req, timeout=120)
            status, body = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        t = now_ms()
        if a.until_type and status == 200 and polls < 100:
            page = json.loads(body)
            if not any(e.get("type") == a.until_type for e in page["events"]):
                u = urllib.parse.urlsplit(url)
                q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query) if k != "after"]
                q.append(("after", page["next_cursor"]))
                url = urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))
                continue
        break
    with open(a.out, "w") as f:
        json.dump({"status": status, "t_ms": t, "polls": polls,
                   "body": body.decode("utf-8", "replace")}, f)
    return 0


def probe(port):
    t0 = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        buf = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
        s.close()
        line = buf.split(b"\r\n", 1)[0].decode("latin-1")
        st = int(line.split()[1]) if line.startswith("HTTP/") else None
    except OSError as e:
        st = "error: %s" % e
    return st, int((time.time() - t0) * 1000)


def cmd_conns(a):
    socks, refused = [], 0
    for _ in range(a.n):
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
            s.sendall(b"GET /v1/vers")
            socks.append(s)
        except OSError:
            refused += 1
    time.sleep(a.hold)
    st, ms = probe(a.port)
    for s in socks:
        s.close()
    print(json.dumps({"opened": len(socks), "refused": refused,
                      "probe_status": st, "probe_ms": ms}))
    return 0


def cmd_many(a):
    statuses = {}
    lock = threading.Lock()
    go = threading.Event()
    t_max = [0]

    def one():
        go.wait()
        t0 = time.time()
        req = urllib.request.Request(a.url, headers={"Authorization": "Bearer " + a.token})
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                resp.read()
                st = str(resp.status)
        except urllib.error.HTTPError as e:
            st = str(e.code)
        except OSError as e:
            st = "error: %s" % type(e).__name__
        with lock:
            statuses[st] = statuses.get(st, 0) + 1
            t_max[0] = max(t_max[0], int((time.time() - t0) * 1000))

    threads = [threading.Thread(target=one) for _ in range(a.n)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()
    print(json.dumps({"statuses": statuses, "max_ms": t_max[0]}, sort_keys=True))
    return 0


def cmd_slow(a):
    req = b"GET /v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096 + b"\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    t0 = time.time()
    sent, reply, closed = 0, b"", None
    s.settimeout(a.interval)
    while time.time() - t0 < a.max:
        try:
            if sent < len(req):
                s.sendall(req[sent:sent + 1])
                sent += 1
        except OSError:
            closed = time.time() - t0
            break
        try:
            c = s.recv(4096)
            if not c:
                closed = time.time() - t0
                break
            reply += c
        except socket.timeout:
            pass
        except OSError:
            closed = time.time() - t0
            break
    s.close()
    print(json.dumps({"closed_after_s": None if closed is None else round(closed, 1),
                      "sent": sent, "reply": reply[:200].decode("latin-1")}))
    return 0


def cmd_badserver(a):
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            b = b'{"bogus": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
    return 0


def cmd_expire(a):
    dump = subprocess.run(["mdb_dump", "-s", "apitokens", a.dir], check=True,
                          capture_output=True, text=True).stdout.splitlines()
    i = dump.index("HEADER=END") + 1
    head = dump[:i]
    pairs = dump[i:]
    out = []
    for k, v in zip(pairs[0::2], pairs[1::2]):
        kb = bytes.fromhex(k.strip())
        if kb[:1] != b"h":
            continue
        rec = json.loads(bytes.fromhex(v.strip()))
        if str(rec.get("id")) == str(a.id):
            rec["expires"] = int(time.time()) - 60
            out += [k, " " + json.dumps(rec, separators=(",", ":")).encode().hex()]
    if not out:
        print("no token %s in apitokens" % a.id, file=sys.stderr)
        return 1
    subprocess.run(["mdb_load", "-s", "apitokens", a.dir], check=True, text=True,
                   input="\n".join(head + out + ["DATA=END"]) + "\n")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sse")
    s.add_argument("--url", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--last-event-id")
    s.add_argument("--out", required=True)
    s.add_argument("--seconds", type=float, default=60)
    s = sub.add_parser("longpoll")
    s.add_argument("--url", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--until-type")
    s = sub.add_parser("conns")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--hold", type=float, default=1)
    s = sub.add_parser("many")
    s.add_argument("--url", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--n", type=int, required=True)
    s = sub.add_parser("slow")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--interval", type=float, default=1)
    s.add_argument("--max", type=float, default=60)
    sub.add_parser("badserver")
    s = sub.add_parser("expire-token")
    s.add_argument("--dir", required=True)
    s.add_argument("--id", required=True)
    a = p.parse_args()
    return {"sse": cmd_sse, "longpoll": cmd_longpoll, "conns": cmd_conns, "many": cmd_many,
            "slow": cmd_slow, "badserver": cmd_badserver,
            "expire-token": cmd_expire}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
