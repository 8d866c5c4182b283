#!/usr/bin/python3
"""webhook_rx.py -- a webhook receiver for tests/integ/t-webhook.sh.

Serve:
  webhook_rx.py --log FILE [--port 0] [--fail-first N] [--retry-after S]
                [--hang] [--reject-id ID]...
    Listens on 127.0.0.1:PORT (0 = kernel picks); the first line on stdout
    is the port (flushed); serves until SIGTERM/SIGINT (exit 0).  HTTP/1.1
    with keep-alive, one thread per connection.  Every request is appended
    to FILE as one JSON line, flushed at once:
      {"n": 1, "t": 1700000000.123, "method": "POST", "path": "/hook",
       "headers": {"x-mxsync-event-id": "7", ...},   (names lower-cased)
       "body_b64": "...", "event_id": 7, "status": 200}
    status is what the receiver answered (null for --hang: never answered).
    --fail-first N   the first N requests get 500 (503 with --retry-after)
    --retry-after S  add "Retry-After: S" to those failures (503)
    --hang           read the request, never answer (until the client
                     goes away)
    --reject-id ID   answer 400 to event ID (repeatable)
  Everything else gets 200 "ok".

Check a log:
  webhook_rx.py --acked FILE          event ids answered 2xx, in order
  webhook_rx.py --verify FILE --secret S [--tolerance 300]
    checks every request: Content-Type, X-Mxsync-Event-Id equal to the
    body's "id", X-Mxsync-Signature "t=T,v1=HEX" with HEX the
    HMAC-SHA256(S, "T.<body>") (hmac.compare_digest) and T within the
    tolerance of the time received.  Prints "ok N" or the first problem
    (exit 1).
"""
import argparse, base64, hashlib, hmac, json, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {'n': 0}


def make_handler(args, logf):
    class H(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'
        # headers and body are two writes: without this, Nagle + delayed
        # ACK add 40 ms to every answer on a kept-alive connection
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def do_POST(self):
            n_len = int(self.headers.get('Content-Length') or 0)
            body = self.rfile.read(n_len)
            with LOCK:
                STATE['n'] += 1
                n = STATE['n']
            try:
                eid = json.loads(body).get('id')
            except ValueError:
                eid = None
            status, extra = 200, {}
            if args.hang:
                status = None
            elif n <= args.fail_first:
                status = 503 if args.retry_after is not None else 500
                if args.retry_after is not None:
                    extra['Retry-After'] = str(args.retry_after)
            elif eid in args.reject_id:
                status = 400
            rec = {'n': n, 't': time.time(), 'method': self.command,
                   'path': self.path,
                   'headers': {k.lower(): v for k, v in self.headers.items()},
                   'body_b64': base64.b64encode(body).decode(),
                   'event_id': eid, 'status': status}
            with LOCK:
                logf.write(json.dumps(rec) + '\n')
                logf.flush()
            if status is None:
                # hang: wait until the client closes the connection
                self.close_connection = True
                try:
                    while self.rfile.read(1):
                        pass
                except OSError:
                    pass
                return
            msg = b'ok' if status == 200 else b'no'
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
    return H


def serve(args):
    logf = open(args.log, 'a')
    srv = ThreadingHTTPServer(('127.0.0.1', args.port), make_handler(args, logf))
    srv.daemon_threads = True

    def bye(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    print(srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.05)
    return 0


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def acked(args):
    for r in records(args.acked):
        if r['status'] is not None and 200 <= r['status'] < 300:
            print(r['event_id'])
    return 0


def verify(args):
    key = args.secret.encode()
    recs = records(args.verify)
    for r in recs:
        h, body = r['headers'], base64.b64decode(r['body_b64'])
        where = 'request %d' % r['n']
        if h.get('content-type') != 'application/json':
            print('%s: Content-Type %r' % (where, h.get('content-type')))
            return 1
        ev = json.loads(body)
        if h.get('x-mxsync-event-id') != str(ev.get('id')):
            print('%s: X-Mxsync-Event-Id %r, body id %r' %
                  (where, h.get('x-mxsync-event-id'), ev.get('id')))
            return 1
        sig = h.get('x-mxsync-signature', '')
        parts = dict(p.split('=', 1) for p in sig.split(',') if '=' in p)
        if set(parts) != {'t', 'v1'}:
            print('%s: malformed signature header %r' % (where, sig))
            return 1
        want = hmac.new(key, parts['t'].encode() + b'.' + body,
                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, parts['v1']):
            print('%s: bad signature' % where)
            return 1
        if abs(int(parts['t']) - r['t']) > args.tolerance:
            print('%s: stale time stamp %s' % (where, parts['t']))
            return 1
    print('ok %d' % len(recs))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--log')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--fail-first', type=int, default=0)
    ap.add_argument('--retry-after', type=int)
    ap.add_argument('--hang', action='store_true')
    ap.add_argument('--reject-id', type=int, action='append', default=[])
    ap.add_argument('--acked')
    ap.add_argument('--verify')
    ap.add_argument('--secret')
    ap.add_argument('--tolerance', type=int, default=300)
    args = ap.parse_args()
    if args.acked:
        return acked(args)
    if args.verify:
        if args.secret is None:
            ap.error('--verify needs --secret')
        return verify(args)
    if not args.log:
        ap.error('--log is required to serve')
    return serve(args)


if __name__ == '__main__':
    sys.exit(main())
