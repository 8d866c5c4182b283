#!/usr/bin/python3
"""faultproxy.py -- a TCP proxy on 127.0.0.1 that injects transport faults.
Usage: faultproxy.py --mode schedule|random --to HOST:PORT [--port N] [--log F]
                     [--fault CONN=SPEC]... [--schedule FILE]
                     [--seed S] [--rate P] [--kinds K,..] [--max-bytes B]
                     [--max-stall MS]

Forwards every accepted connection to --to byte for byte (TLS passes through
untouched, so it serves IMAPS, POP3S, submission+STARTTLS as well as plain
IMAP).  Each connection gets at most one fault plan, chosen when it is
accepted (connections are numbered 1, 2, ... in accept order):

  --mode schedule   the plan comes from --fault CONN=SPEC options and/or
                    --schedule FILE (one CONN=SPEC a line, '#' comments).
                    CONN is N, N-M or '*'; the first matching entry wins.
  --mode random     each connection gets a random fault with probability
                    --rate (default 0.3) from an RNG seeded with --seed
                    (default 1): same seed + same accept order = same plan.
                    --kinds K,K... limits the kinds drawn (default: all;
                    midlit never fires on TLS).
                    Byte offsets are drawn log-uniformly from 0..--max-bytes
                    (65536), stalls from 100..--max-stall ms (3000), ages
                    from 100..--max-age ms (20000).

SPEC (DIR is c2s, s2c or both; BYTES counts the bytes of that direction):
  none                      forward untouched
  drop:DIR:BYTES            forward BYTES bytes, then close both sides (FIN)
  rst:DIR:BYTES             forward BYTES bytes, then reset the client's
                            connection (SO_LINGER 0 -> RST) and close upstream
  stall:DIR:BYTES:MS        after BYTES bytes, forward nothing for MS ms
  delay:MS                  wait MS ms before forwarding each chunk
  split[:DIR[:BYTES]]       forward (the first BYTES bytes, default all) one
                            byte per send() with TCP_NODELAY (1-byte segments)
  age:MS                    reset the connection MS ms after it was accepted,
                            wherever it is (a drop while idling in IDLE)
  midlit[:MINLEN]           plaintext IMAP only: once the server announces a
                            literal {N} with N >= MINLEN (default 100), forward
                            the announcement and half of the literal, then RST

SIGUSR1 turns faults off for connections accepted afterwards, SIGUSR2 back
on (logged); SIGTERM/SIGINT exit 0.  The first stdout line is the port.

Log lines:  conn N open | conn N closed c2s=B s2c=B
            plan N SPEC                    the fault chosen for connection N
            fault N KIND DIR at BYTES      the fault fired (midlit: "fault N
                                           midlit s2c at BYTES literal L";
                                           age: "fault N age both at S2C")
            faults off | faults on
            conn N upstream failed: ERR
"""
import math, random, re, signal, socket, struct, sys, threading, time

from fakeserver import log, parser, serve

_LOCK = threading.Lock()
_STATE = {'on': True}
_LIT = re.compile(rb'\{(\d+)\}\r\n')
KINDS = ['drop', 'rst', 'stall', 'delay', 'split', 'midlit', 'age']


def parse_spec(spec):
    """SPEC string -> dict; raises ValueError with a readable reason."""
    f = spec.split(':')
    k = f[0]
    try:
        if k == 'none':
            return {'kind': 'none'}
        if k in ('drop', 'rst'):
            return {'kind': k, 'dir': _dir(f[1]), 'bytes': int(f[2])}
        if k == 'stall':
            return {'kind': k, 'dir': _dir(f[1]), 'bytes': int(f[2]),
                    'ms': int(f[3])}
        if k == 'delay':
            return {'kind': k, 'ms': int(f[1])}
        if k == 'split':
            return {'kind': k, 'dir': _dir(f[1]) if len(f) > 1 else 'both',
                    'bytes': int(f[2]) if len(f) > 2 else -1}
        if k == 'midlit':
            return {'kind': k, 'min': int(f[1]) if len(f) > 1 else 100}
        if k == 'age':
            return {'kind': k, 'ms': int(f[1])}
    except (IndexError, ValueError):
        raise ValueError('bad fault spec %r' % spec)
    raise ValueError('unknown fault kind %r in %r' % (k, spec))


def _dir(s):
    if s not in ('c2s', 's2c', 'both'):
        raise ValueError('bad direction %r' % s)
    return s


def spec_str(p):
    k = p['kind']
    if k in ('drop', 'rst'):
        return '%s:%s:%d' % (k, p['dir'], p['bytes'])
    if k == 'stall':
        return 'stall:%s:%d:%d' % (p['dir'], p['bytes'], p['ms'])
    if k == 'delay':
        return 'delay:%d' % p['ms']
    if k == 'split':
        return 'split:%s:%d' % (p['dir'], p['bytes'])
    if k == 'midlit':
        return 'midlit:%d' % p['min']
    if k == 'age':
        return 'age:%d' % p['ms']
    return k


def parse_schedule(lines):
    out = []
    for line in lines:
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        conn, eq, spec = line.partition('=')
        if not eq:
            raise ValueError('bad schedule entry %r (want CONN=SPEC)' % line)
        conn = conn.strip()
        if conn == '*':
            lo, hi = 1, sys.maxsize
        elif '-' in conn:
            lo, hi = (int(x) for x in conn.split('-', 1))
        else:
            lo = hi = int(conn)
        out.append((lo, hi, parse_spec(spec.strip())))
    return out


def choose(n, a):
    """The plan of connection N (called in accept order, under _LOCK)."""
    if not _STATE['on']:
        return {'kind': 'none'}
    if a.mode == 'schedule':
        for lo, hi, p in a.plan:
            if lo <= n <= hi:
                return p
        return {'kind': 'none'}
    r = a.rng
    if r.random() >= a.rate:
        return {'kind': 'none'}
    k = r.choice(a.kinds)
    d = 's2c' if r.random() < 0.75 else 'c2s'
    # log-uniform offsets: as many faults in the first KB (greeting, login)
    # as between 100 KB and 1 MB (a long sync, IDLE after new mail)
    off = int(math.exp(r.uniform(0, math.log(a.max_bytes + 1)))) - 1
    if k in ('drop', 'rst'):
        return {'kind': k, 'dir': d, 'bytes': off}
    if k == 'stall':
        return {'kind': k, 'dir': d, 'bytes': off,
                'ms': r.randint(100, a.max_stall)}
    if k == 'delay':
        return {'kind': k, 'ms': r.randint(1, 20)}
    if k == 'split':
        return {'kind': k, 'dir': 'both', 'bytes': r.randint(1, 8192)}
    if k == 'age':
        return {'kind': k, 'ms': r.randint(100, a.max_age)}
    return {'kind': k, 'min': 100}


class Conn:
    def __init__(self, n, client, up, plan):
        self.n, self.client, self.up, self.plan = n, client, up, plan
        self.count = {'c2s': 0, 's2c': 0}
        self.dead = threading.Event()
        self.stalled = False

    def kill(self, rst):
        if self.dead.is_set():
            return
        self.dead.set()
        if rst:
            # close() after SO_LINGER {1, 0} sends RST instead of FIN; the
            # handler closes the client socket once both pumps have ended
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack('ii', 1, 0))
            how = socket.SHUT_RD
        else:
            how = socket.SHUT_RDWR
        for s, h in ((self.client, how), (self.up, socket.SHUT_RDWR)):
            try:
                s.shutdown(h)
            except OSError:
                pass

    def applies(self, d):
        return self.plan.get('dir') in (d, 'both')

    def send(self, dst, data, d):
        """Forward DATA in direction D under the plan; False once killed."""
        p, k = self.plan, self.plan['kind']
        if k == 'delay':
            time.sleep(p['ms'] / 1000.0)
        if k in ('drop', 'rst', 'stall') and self.applies(d):
            room = p['bytes'] - self.count[d]
            if 0 <= room < len(data) or (room == 0 and not data):
                head, data = data[:room], data[room:]
                self._out(dst, head, d)
                log('fault %d %s %s at %d' % (self.n, k, d, self.count[d]))
                if k != 'stall':
                    self.kill(k == 'rst')
                    return False
                if not self.stalled:
                    self.stalled = True
                    time.sleep(p['ms'] / 1000.0)
                    self.plan = {'kind': 'none'}
        if k == 'split' and self.applies(d):
            lim = p['bytes']
            n1 = len(data) if lim < 0 else max(0, min(len(data), lim - self.count[d]))
            for i in range(n1):
                self._out(dst, data[i:i + 1], d)
            data = data[n1:]
        if k == 'midlit' and d == 's2c':
            return self._midlit(dst, data)
        self._out(dst, data, d)
        return not self.dead.is_set()

    def _midlit(self, dst, data):
        p = self.plan
        if 'left' not in p:
            buf = p.get('tail', b'') + data
            for m in _LIT.finditer(buf):
                size = int(m.group(1))
                if size >= p['min']:
                    start = m.end() - len(p.get('tail', b''))
                    p['left'] = start + size // 2
                    p['size'] = size
                    break
            else:
                p['tail'] = buf[-32:]
                self._out(dst, data, 's2c')
                return True
        if p['left'] >= len(data):
            p['left'] -= len(data)
            self._out(dst, data, 's2c')
            return True
        self._out(dst, data[:max(0, p['left'])], 's2c')
        log('fault %d midlit s2c at %d literal %d' % (self.n, self.count['s2c'], p['size']))
        self.kill(True)
        return False

    def _out(self, dst, data, d):
        if data:
            dst.sendall(data)
            self.count[d] += len(data)

    def pump(self, src, dst, d):
        try:
            # a fault at byte 0 fires before anything is read
            if not self.send(dst, b'', d):
                return
            while not self.dead.is_set():
                data = src.recv(65536)
                if not data:
                    break
                if not self.send(dst, data, d):
                    return
        except OSError:
            pass
        if not self.dead.is_set():
            # EOF or error on one side: close the other (no half-close games)
            self.kill(False)


def handle(sock, n, a):
    with _LOCK:
        plan = dict(choose(n, a))
    log('plan %d %s' % (n, spec_str(plan)))
    host, _, port = a.to.rpartition(':')
    try:
        up = socket.create_connection((host, int(port)), timeout=10)
    except OSError as e:
        log('conn %d upstream failed: %s' % (n, e))
        return
    up.settimeout(None)
    if plan['kind'] == 'split':
        for s in (sock, up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = Conn(n, sock, up, plan)
    timer = None
    if plan['kind'] == 'age':
        def expire():
            if not c.dead.is_set():
                log('fault %d age both at %d' % (n, c.count['s2c']))
                c.kill(True)
        timer = threading.Timer(plan['ms'] / 1000.0, expire)
        timer.daemon = True
        timer.start()
    t = threading.Thread(target=c.pump, args=(sock, up, 'c2s'), daemon=True)
    t.start()
    c.pump(up, sock, 's2c')
    t.join()
    if timer:
        timer.cancel()
    up.close()
    log('conn %d closed c2s=%d s2c=%d' % (n, c.count['c2s'], c.count['s2c']))


def main():
    p = parser(__doc__, '--mode', ['schedule', 'random'])
    p.add_argument('--to', required=True, help='upstream HOST:PORT')
    p.add_argument('--fault', action='append', default=[],
                   help='CONN=SPEC (repeatable, schedule mode)')
    p.add_argument('--schedule', help='file of CONN=SPEC lines')
    p.add_argument('--seed', default='1')
    p.add_argument('--rate', type=float, default=0.3)
    p.add_argument('--max-bytes', type=int, default=65536)
    p.add_argument('--max-stall', type=int, default=3000)
    p.add_argument('--max-age', type=int, default=20000)
    p.add_argument('--kinds', default=','.join(KINDS),
                   help='random mode: the fault kinds to draw from')
    a = p.parse_args()
    lines = list(a.fault)
    try:
        if a.schedule:
            with open(a.schedule) as f:
                lines += f.read().splitlines()
        a.plan = parse_schedule(lines)
    except (OSError, ValueError) as e:
        p.error(str(e))
    a.rng = random.Random(a.seed)
    a.kinds = a.kinds.split(',')
    if not set(a.kinds) <= set(KINDS):
        p.error('--kinds: a comma-separated subset of %s' % ','.join(KINDS))

    def toggle(signum, frame):
        with _LOCK:
            _STATE['on'] = signum == signal.SIGUSR2
        log('faults %s' % ('on' if _STATE['on'] else 'off'))
    signal.signal(signal.SIGUSR1, toggle)
    signal.signal(signal.SIGUSR2, toggle)
    serve(a, handle)


if __name__ == '__main__':
    main()
