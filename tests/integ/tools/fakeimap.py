#!/usr/bin/python3
"""fakeimap.py -- hostile/broken IMAP servers on 127.0.0.1 for client tests.

usage: fakeimap.py --mode MODE [--port N] [--log FILE] [mode options]

Listens on 127.0.0.1:PORT (0 = kernel picks); the first line on stdout is
the port number (flushed), then it serves until SIGTERM/SIGINT (exit 0).
Connections are handled concurrently (threads).

--log FILE   one line per event, flushed immediately:
               conn N open / conn N closed
               C N <line>            a client command line (all modes but proxy;
                                      LOGIN/AUTHENTICATE arguments are logged
                                      as-is, so tests can grep for secrets)
               CREDENTIALS N <verb>  a LOGIN or AUTHENTICATE arrived
               cut N after B bytes   (proxy)
               stall N after B bytes (proxy --stall)
               drip N open, K others live   (drip: K other drip connections
                                      the client had not closed yet)

Modes:
  nostarttls  "STARTTLS stripped": greets
                * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN] fake ready
              CAPABILITY without STARTTLS; STARTTLS -> BAD; LOGIN/AUTHENTICATE
              -> OK (and "CREDENTIALS" in the log); LOGOUT -> BYE + OK;
              anything else -> BAD. Assert `! grep -q CREDENTIALS LOG`.
  garbage     greets with a normal "* OK" line, then answers every command
              line with junk: random bytes, bogus literals ({999999999}),
              unterminated strings, NUL bytes, huge lines, untagged lines
              with the client's tag missing, ... (seeded: --seed, default 1,
              so a run is reproducible). Never sends a tagged OK.
  proxy       TCP proxy to --to HOST:PORT, both directions, byte-transparent
              (TLS passes through). With --cut-after B the proxy forwards
              exactly B server->client bytes, then closes BOTH sockets of
              that connection (the client sees EOF mid-response):
                default        only the FIRST accepted connection is cut;
                               later connections pass through unlimited
                               (so a retry/resume can succeed)
                --cut-every    every connection is cut after B bytes
                --cut-count K  the first K connections are cut
              B counts server->client bytes of that connection only.
                --stall        instead of closing, forward nothing more and
                               keep the connection open until the client
                               closes it (log: stall N after B bytes)
  greet-only  greets and then never answers (hangs): tests client timeouts.
  bye         greets with "* BYE server shutting down" and closes.
  drip        "slow drip": sends "* OK " and then one more byte every
              --interval seconds (default 1) for ever, never a line end, so
              a client's inactivity timeout never fires. Protocol-agnostic:
              POP3 and SMTP clients wait for the same first line.
  silent      accepts and never sends a byte; logs what the client sends
              (C N <data>).
"""
import random, select, socket, sys, threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from fakeserver import LineConn, log, parser, serve

def tag_of(line):
    return line.split(b' ', 1)[0] if line else b'*'

def serve_nostarttls(sock, n, a):
    c = LineConn(sock)
    c.send(b'* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN] fake ready\r\n')
    while True:
        line = c.readline()
        if line is None:
            return
        log('C %d %s' % (n, line.decode('latin-1')))
        parts = line.split(b' ')
        tag = parts[0]
        cmd = parts[1].upper() if len(parts) > 1 else b''
        if cmd == b'CAPABILITY':
            c.send(b'* CAPABILITY IMAP4rev1 AUTH=PLAIN LOGIN\r\n' + tag + b' OK done\r\n')
        elif cmd == b'STARTTLS':
            c.send(tag + b' BAD STARTTLS not supported\r\n')
        elif cmd in (b'LOGIN', b'AUTHENTICATE'):
            log('CREDENTIALS %d %s' % (n, cmd.decode()))
            if cmd == b'AUTHENTICATE' and len(parts) == 3:
                c.send(b'+ \r\n')
                resp = c.readline()
                log('C %d %s' % (n, (resp or b'').decode('latin-1')))
            c.send(tag + b' OK logged in\r\n')
        elif cmd == b'NOOP':
            c.send(tag + b' OK noop\r\n')
        elif cmd == b'LOGOUT':
            c.send(b'* BYE bye\r\n' + tag + b' OK logout\r\n')
            return
        else:
            c.send(tag + b' BAD unknown command\r\n')

def junk(rng, tag):
    k = rng.randrange(10)
    if k == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 400)))
    if k == 1:
        return b'* 1 FETCH (BODY[] {999999999}\r\n' + b'x' * rng.randrange(100)
    if k == 2:
        return b'* 1 FETCH (UID "unterminated\r\n'
    if k == 3:
        return b'* OK \x00\x00\x00 nul\r\n'
    if k == 4:
        return b'* ' + b'A' * rng.randrange(70000, 200000) + b'\r\n'
    if k == 5:
        return tag + b'\r\n'
    if k == 6:
        return b'* 4294967297 EXISTS\r\n* -1 EXPUNGE\r\n'
    if k == 7:
        return b'* LIST (\\Noselect "/" {5}\r\nab'
    if k == 8:
        return b')))(((\r\n' + tag + b' MAYBE\r\n'
    return b'+ ' + bytes(rng.getrandbits(8) for _ in range(50)) + b'\n\r\r\n'

def serve_garbage(sock, n, a):
    rng = random.Random('%s-%d' % (a.seed, n))
    c = LineConn(sock)
    c.send(b'* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake ready\r\n')
    while True:
        line = c.readline()
        if line is None:
            return
        log('C %d %s' % (n, line.decode('latin-1')))
        if line.split(b' ')[1:2] and line.split(b' ')[1].upper() in (b'LOGIN', b'AUTHENTICATE'):
            log('CREDENTIALS %d %s' % (n, line.split(b' ')[1].decode('latin-1')))
        c.send(junk(rng, tag_of(line)))

def serve_greet_only(sock, n, a):
    sock.sendall(b'* OK fake ready\r\n')
    while True:
        d = sock.recv(65536)
        if not d:
            return
        log('C %d %s' % (n, d.decode('latin-1').rstrip()))

_DRIPS = set()
_DRIPS_LOCK = threading.Lock()

def _client_closed(s):
    """True if the client of S already closed it (EOF is waiting)."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        return bool(r) and s.recv(1, socket.MSG_PEEK) == b''
    except OSError:
        return True

def serve_drip(sock, n, a):
    # How many other drip connections the client still holds: its close
    # (FIN) arrives before its next connect, so this count does not
    # depend on when this server's threads notice closes.
    with _DRIPS_LOCK:
        live = sum(1 for s in _DRIPS if not _client_closed(s))
        _DRIPS.add(sock)
    log('drip %d open, %d others live' % (n, live))
    try:
        drip(sock, n, a)
    finally:
        with _DRIPS_LOCK:
            _DRIPS.discard(sock)

def drip(sock, n, a):
    sock.sendall(b'* OK ')
    while True:
        # The client's timeout must not fire between bytes; a client that
        # closes is noticed at once (tests count open connections).
        r, _, _ = select.select([sock], [], [], a.interval)
        if r:
            d = sock.recv(65536)
            if not d:
                return
            log('C %d %s' % (n, d.decode('latin-1').rstrip()))
            continue
        sock.sendall(b'x')

def serve_silent(sock, n, a):
    while True:
        d = sock.recv(65536)
        if not d:
            return
        log('C %d %s' % (n, d.decode('latin-1').rstrip()))

def serve_bye(sock, n, a):
    sock.sendall(b'* BYE server shutting down\r\n')

def serve_proxy(sock, n, a):
    host, _, port = a.to.rpartition(':')
    try:
        up = socket.create_connection((host, int(port)), timeout=10)
    except OSError as e:
        log('conn %d upstream failed: %s' % (n, e))
        return
    up.settimeout(None)
    limit = None
    if a.cut_after is not None:
        if a.cut_every or n <= a.cut_count:
            limit = a.cut_after
    done = threading.Event()

    def c2s():
        try:
            while True:
                d = sock.recv(65536)
                if not d:
                    break
                up.sendall(d)
        except OSError:
            pass
        finally:
            try:
                up.shutdown(socket.SHUT_WR)
            except OSError:
                pass
    t = threading.Thread(target=c2s, daemon=True); t.start()
    sent = 0
    try:
        while True:
            want = 65536 if limit is None else min(65536, limit - sent)
            if want <= 0 and a.stall:
                # Forward nothing more but keep the connection open
                # until the client gives up (or is interrupted).
                log('stall %d after %d bytes' % (n, sent))
                t.join()
                break
            if want <= 0:
                log('cut %d after %d bytes' % (n, sent))
                break
            d = up.recv(want)
            if not d:
                break
            sock.sendall(d)
            sent += len(d)
    except OSError:
        pass
    finally:
        for s in (sock, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

MODES = {'nostarttls': serve_nostarttls, 'garbage': serve_garbage,
         'proxy': serve_proxy, 'greet-only': serve_greet_only, 'bye': serve_bye,
         'drip': serve_drip, 'silent': serve_silent}

def main():
    p = parser(__doc__, '--mode', sorted(MODES))
    p.add_argument('--to', help='proxy upstream HOST:PORT')
    p.add_argument('--cut-after', type=int)
    p.add_argument('--cut-every', action='store_true')
    p.add_argument('--cut-count', type=int, default=1)
    p.add_argument('--stall', action='store_true')
    p.add_argument('--seed', default='1')
    p.add_argument('--interval', type=float, default=1.0,
                   help='drip: seconds between bytes')
    a = p.parse_args()
    if a.mode == 'proxy' and not a.to:
        p.error('--mode proxy needs --to HOST:PORT')
    serve(a, MODES[a.mode])

if __name__ == '__main__':
    main()
