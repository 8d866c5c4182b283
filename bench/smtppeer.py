#!/usr/bin/python3
"""smtppeer.py -- a minimal SMTP client, the peer of bench/send-bench.

usage: smtppeer.py PORT MODE DIR [--tls CA_FILE]

Sends every DIR/NNNN.eml (sorted by name) to 127.0.0.1:PORT with the
envelope of its DIR/NNNN.env (as tests/integ/tools/smtpsink.py writes them:
line 1 the MAIL FROM command, then one RCPT TO command per recipient), the
same bytes and the same commands mxsync sent.  All files are read before
the first connection.

MODE
  per-message   one session per message, as mxsync's outbox does today:
                connect, EHLO, AUTH PLAIN (if offered), MAIL/RCPT/DATA,
                the message, QUIT
  one-session   one session for all messages (EHLO and AUTH once): what
                the sink can take at most from one client

MAIL, RCPT and DATA go out in one write when the server advertises
PIPELINING (RFC 2920), one command per round trip otherwise.  --tls:
implicit TLS from the first byte (smtps), the server's certificate verified
against CA_FILE for 127.0.0.1, a full handshake per connection (no session
resumption, as mxsync).  Any reply
other than the expected one is an error (exit 1).  Prints one line:
"sent N messages in S s (M/s), C connections, pipelining yes|no".
"""
import base64
import os
import socket
import ssl
import sys
import time


class Peer:
    def __init__(self, port, ctx):
        self.port = port
        self.ctx = ctx
        self.sock = None
        self.rf = None
        self.pipelining = False
        self.conns = 0

    def reply(self, want):
        """Reads one (multi-line) reply; its code must start with WANT."""
        lines = []
        while True:
            line = self.rf.readline()
            if not line:
                raise RuntimeError('connection closed, expected %s' % want)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b'-':
                break
        if not lines[-1].startswith(want.encode()):
            raise RuntimeError('expected %s, got %r' % (want, lines[-1]))
        return lines

    def open(self):
        self.sock = socket.create_connection(('127.0.0.1', self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ctx:
            self.sock = self.ctx.wrap_socket(self.sock,
                                             server_hostname='127.0.0.1')
        self.rf = self.sock.makefile('rb')
        self.conns += 1
        self.reply('220')
        self.sock.sendall(b'EHLO [127.0.0.1]\r\n')
        ext = [l[4:].strip().upper() for l in self.reply('250')]
        self.pipelining = b'PIPELINING' in ext
        if any(e.startswith(b'AUTH') for e in ext):
            ir = base64.b64encode(b'\0bench\0bench').decode()
            self.sock.sendall(('AUTH PLAIN %s\r\n' % ir).encode())
            self.reply('235')

    def close(self):
        self.sock.sendall(b'QUIT\r\n')
        self.reply('221')
        self.rf.close()
        self.sock.close()

    def send(self, env, body):
        mail, rcpts = env[0], env[1:]
        cmds = [mail] + rcpts + [b'DATA']
        wants = ['250'] + ['250'] * len(rcpts) + ['354']
        if self.pipelining:
            self.sock.sendall(b''.join(c + b'\r\n' for c in cmds))
            for w in wants:
                self.reply(w)
        else:
            for c, w in zip(cmds, wants):
                self.sock.sendall(c + b'\r\n')
                self.reply(w)
        self.sock.sendall(body)
        self.reply('250')


def stuffed(raw):
    """RFC 5321 4.5.2 dot-stuffing plus the final CRLF.CRLF."""
    lines = raw.split(b'\r\n')
    if lines and lines[-1] == b'':
        lines.pop()
    out = b'\r\n'.join(b'.' + l if l.startswith(b'.') else l for l in lines)
    return out + b'\r\n.\r\n'


def main():
    a = sys.argv[1:]
    ctx = None
    if len(a) == 5 and a[3] == '--tls':
        ctx = ssl.create_default_context(cafile=a[4])
        a = a[:3]
    if len(a) != 3 or a[1] not in ('per-message', 'one-session'):
        sys.stderr.write(__doc__)
        return 2
    port, mode, d = int(a[0]), a[1], a[2]
    msgs = []
    for name in sorted(os.listdir(d)):
        if not name.endswith('.eml'):
            continue
        base = os.path.join(d, name[:-4])
        with open(base + '.env', 'rb') as f:
            env = [l.rstrip(b'\r\n') for l in f if l.strip()]
        with open(base + '.eml', 'rb') as f:
            msgs.append((env, stuffed(f.read())))
    if not msgs:
        sys.stderr.write('smtppeer: no messages in %s\n' % d)
        return 1
    p = Peer(port, ctx)
    t0 = time.perf_counter()
    try:
        if mode == 'one-session':
            p.open()
        for env, body in msgs:
            if mode == 'per-message':
                p.open()
            p.send(env, body)
            if mode == 'per-message':
                p.close()
        if mode == 'one-session':
            p.close()
    except (OSError, RuntimeError) as e:
        sys.stderr.write('smtppeer: %s\n' % e)
        return 1
    s = time.perf_counter() - t0
    print('sent %d messages in %.3f s (%.0f/s), %d connections, pipelining %s'
          ', TLS %s' % (len(msgs), s, len(msgs) / s, p.conns,
                        'yes' if p.pipelining else 'no',
                        'yes' if ctx else 'no'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
