#!/usr/bin/python3
"""scriptserver.py -- plays the server side of a case file (tests/data/cases).

usage: scriptserver.py --case FILE [--port 0] [--log FILE] [--cert PEM --key PEM]

Listens on 127.0.0.1:PORT (0 = kernel picks); the first stdout line is the
port (flushed); serves until SIGTERM/SIGINT (exit 0).  Stdlib only.
Connection N plays the N-th "server" block of the case file; a connection
without a block is a mismatch.  The format is described in
tests/data/cases/README.md; t-cases.sh runs the case files.

Directives of a server block (TEXT: \\r \\n \\t \\0 \\\\ \\xHH escapes;
$tag: the first word of the last client line read; @NAME@: the bytes of
data block NAME, @#NAME@: their length; RE: a Python regular expression,
$tag in it matches that word literally):
  send TEXT      TEXT and CR LF          raw TEXT      TEXT alone
  expect RE      the next client line must match RE (whole line)
  until RE       client lines are read until one matches RE
  wait MS        sleep MS milliseconds   drip MS       later sends go out
                                                       one byte per MS ms
  starttls       TLS handshake now (needs --cert/--key)
  close          close the connection    hold          read until the
  eof            the client must close   (next read: end of file)
                                                       client closes

"tls implicit" in the case file (the runner passes --cert/--key): each
connection starts with a TLS handshake.

Log lines (--log): conn N open|closed, C N <client line>,
S N script done (every directive played), S N MISMATCH <why>.
"""
import re, ssl, sys, time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from fakeserver import LineConn, log, parser, serve

ESC = re.compile(rb'\\(x[0-9A-Fa-f]{2}|[rnt0\\])')
DIRECTIVES = ('send', 'raw', 'expect', 'until', 'wait', 'drip', 'starttls',
              'close', 'hold', 'eof')


def unescape(b):
    def one(m):
        e = m.group(1)
        if e[:1] == b'x':
            return bytes([int(e[1:], 16)])
        return {b'r': b'\r', b'n': b'\n', b't': b'\t', b'0': b'\0',
                b'\\': b'\\'}[e]
    return ESC.sub(one, b)


class Case:
    """The parts of a case file the player needs: data blocks, server
    blocks (lists of (directive, argument bytes)) and the tls setting."""

    def __init__(self, path):
        self.data, self.servers, self.tls = {}, [], 'none'
        block = None
        with open(path, 'rb') as f:
            lines = f.read().split(b'\n')
        for no, line in enumerate(lines, 1):
            line = line.rstrip(b'\r')
            if block is not None and block[0] == 'data':
                if line == b'end':
                    self.data[block[1]] = b''.join(block[2])
                    block = None
                else:
                    block[2].append(unescape(line) + b'\r\n')
                continue
            if block is not None:  # a server block
                s = line.strip()
                if s == b'end':
                    self.servers.append(block[2])
                    block = None
                    continue
                if not s or s.startswith(b'#'):
                    continue
                word, _, arg = s.partition(b' ')
                word = word.decode()
                if word not in DIRECTIVES:
                    raise SystemExit('%s:%d: unknown directive %r' % (path, no, word))
                block[2].append((word, arg))
                continue
            word, _, arg = line.strip().partition(b' ')
            if word == b'data':
                block = ('data', arg.decode(), [])
            elif word == b'server':
                block = ('server', None, [])
            elif word == b'tls':
                self.tls = arg.decode()
        if block is not None:
            raise SystemExit('%s: a %s block without "end"' % (path, block[0]))

    def expand(self, text, tag):
        def data(m):
            name = m.group(2).decode()
            if name not in self.data:
                return m.group(0)  # not a data block: "a@b@c" stays
            d = self.data[name]
            return b'%d' % len(d) if m.group(1) else d
        text = text.replace(b'$tag', tag)
        return re.sub(rb'@(#?)([A-Za-z0-9_-]+)@', data, unescape(text))


class Player:
    def __init__(self, sock, n, args, case):
        self.c = LineConn(sock)
        self.n, self.args, self.case = n, args, case
        self.tag = b''
        self.drip = 0

    def note(self, msg):
        log('S %d %s' % (self.n, msg))

    def send(self, data):
        if not self.drip:
            self.c.send(data)
            return
        for i in range(len(data)):
            self.c.send(data[i:i + 1])
            time.sleep(self.drip / 1000.0)

    def read(self):
        line = self.c.readline()
        if line is not None:
            log('C %d %s' % (self.n, line.decode('latin-1')))
            self.tag = line.split(b' ', 1)[0]
        return line

    def tls(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.args.cert, self.args.key)
        self.c.s = ctx.wrap_socket(self.c.s, server_side=True)

    def run(self):
        if self.n > len(self.case.servers):
            self.note('MISMATCH connection %d has no server block' % self.n)
            return
        if self.case.tls == 'implicit':
            self.tls()
        for word, arg in self.case.servers[self.n - 1]:
            if word in ('send', 'raw'):
                self.send(self.case.expand(arg, self.tag) +
                          (b'\r\n' if word == 'send' else b''))
            elif word in ('expect', 'until'):
                rx = re.compile(arg.replace(b'$tag', re.escape(self.tag)))
                while True:
                    line = self.read()
                    if line is None:
                        self.note('MISMATCH end of file, wanted: %s'
                                  % arg.decode('latin-1'))
                        return
                    if rx.fullmatch(line):
                        break
                    if word == 'expect':
                        self.note('MISMATCH wanted: %s' % arg.decode('latin-1'))
                        return
            elif word == 'wait':
                time.sleep(int(arg) / 1000.0)
            elif word == 'drip':
                self.drip = int(arg)
            elif word == 'starttls':
                if self.c.buf:
                    self.note('MISMATCH client sent data before the handshake')
                    return
                self.tls()
            elif word == 'close':
                break
            elif word == 'hold':
                try:
                    while self.c.s.recv(65536):
                        pass
                except OSError:
                    pass  # a reset is a close too
            elif word == 'eof':
                try:
                    line = self.read()
                except OSError:
                    line = None
                if line is not None:
                    self.note('MISMATCH wanted end of file')
                    return
        self.note('script done')


def main():
    p = parser(__doc__, '--case', None)
    p.add_argument('--cert')
    p.add_argument('--key')
    args = p.parse_args()
    case = Case(args.case)
    serve(args, lambda sock, n, a: Player(sock, n, a, case).run(),
          log_errors=(OSError, ValueError, ssl.SSLError))


if __name__ == '__main__':
    main()
