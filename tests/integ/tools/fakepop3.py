#!/usr/bin/python3
"""fakepop3.py -- scripted, partly hostile POP3 servers on 127.0.0.1.

usage: fakepop3.py --mode MODE [--port N] [--log FILE]

Listens on 127.0.0.1:PORT (0 = kernel picks); the first line on stdout is
the port number (flushed), then it serves until SIGTERM/SIGINT (exit 0).
Plain TCP only (clients connect with --insecure-plaintext, or expect STLS
and must refuse).  Connections are handled concurrently (threads).

--log FILE   one line per event, flushed immediately:
               conn N open / conn N closed
               C N <line>            every client line, verbatim
               CREDENTIALS N <verb>  USER/PASS/AUTH arrived
               DELE N <num>          a DELE was accepted
               QUIT N <k> deleted    QUIT applied k deletions

The maildrop has two messages (UIDLs "uid-one", "uid-two"); message 2 has
a line starting with "." (dot-stuffed on the wire).  Modes:
  good        a correct server (the control: a client must sync it)
  nostls      CAPA without STLS; STLS -> -ERR; logins accepted (logged)
  stlsinject  STLS -> "+OK Begin TLS" and, in the same packet, an injected
              "+OK injected" line before any handshake
  overlong    UIDL answers with a 1 MiB line
  baduidl     UIDL line with a control character in the unique-id
  longuidl    UIDL line with a 71-character unique-id
  dupuidl     both messages get the same unique-id
  nouidl      UIDL -> -ERR (an RFC 1939 server without the optional command)
  noterm      RETR sends the message and closes without the final "."
  listmismatch LIST names a message UIDL did not
  tempfail    every login -> "-ERR [SYS/TEMP] backend down"
  inuse       every login -> "-ERR [IN-USE] mailbox locked"
  badpass     every login -> "-ERR [AUTH] invalid credentials"
"""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from fakeserver import log, parser, serve

MSGS = [
    ('uid-one', b'From: a@example.test\r\nTo: b@example.test\r\n'
                b'Subject: one\r\nMessage-ID: <one@fake>\r\n\r\nHello.\r\n'),
    ('uid-two', b'From: a@example.test\r\nTo: b@example.test\r\n'
                b'Subject: two\r\nMessage-ID: <two@fake>\r\n\r\n'
                b'.a line that starts with a dot\r\n..two dots\r\nend\r\n'),
]


def stuff(body):
    out = []
    for line in body.split(b'\r\n')[:-1]:
        out.append(b'.' + line if line.startswith(b'.') else line)
    return b'\r\n'.join(out) + b'\r\n'


def session(sock, n, args):
    mode = args.mode
    f = sock.makefile('rb')
    send = sock.sendall
    deleted = set()
    send(b'+OK fake POP3 ready\r\n')
    while True:
        raw = f.readline()
        if not raw:
            break
        line = raw.rstrip(b'\r\n').decode('latin-1')
        log('C %d %s' % (n, line))
        cmd = line.split(' ')[0].upper()
        arg = line[len(cmd) + 1:]
        if cmd == 'CAPA':
            caps = ['UIDL', 'USER', 'SASL PLAIN', 'RESP-CODES']
            if mode not in ('nostls',):
                caps.append('STLS')
            send(('+OK\r\n' + ''.join(c + '\r\n' for c in caps) + '.\r\n').encode())
        elif cmd == 'STLS':
            if mode == 'stlsinject':
                send(b'+OK Begin TLS\r\n+OK injected\r\n')
            else:
                send(b'-ERR TLS not available\r\n')
        elif cmd in ('USER', 'PASS', 'AUTH'):
            log('CREDENTIALS %d %s' % (n, cmd))
            if cmd == 'USER':
                send(b'+OK\r\n')
            elif mode == 'tempfail':
                send(b'-ERR [SYS/TEMP] backend down\r\n')
            elif mode == 'inuse':
                send(b'-ERR [IN-USE] mailbox locked\r\n')
            elif mode == 'badpass':
                send(b'-ERR [AUTH] invalid credentials\r\n')
            elif cmd == 'AUTH' and len(arg.split(' ')) < 2:
                send(b'+ \r\n')
                log('C %d %s' % (n, f.readline().rstrip(b'\r\n').decode('latin-1')))
                send(b'+OK logged in\r\n')
            else:
                send(b'+OK logged in\r\n')
        elif cmd == 'UIDL':
            if mode == 'nouidl':
                send(b'-ERR command not supported\r\n')
                continue
            lines = ['%d %s' % (i + 1, u) for i, (u, _) in enumerate(MSGS)]
            if mode == 'overlong':
                lines[0] = '1 ' + 'x' * (1 << 20)
            elif mode == 'baduidl':
                lines[1] = '2 bad\x01uid'
            elif mode == 'longuidl':
                lines[1] = '2 ' + 'y' * 71
            elif mode == 'dupuidl':
                lines[1] = '2 uid-one'
            send(('+OK\r\n' + ''.join(l + '\r\n' for l in lines) + '.\r\n').encode('latin-1'))
        elif cmd == 'LIST':
            lines = ['%d %d' % (i + 1, len(b)) for i, (_, b) in enumerate(MSGS)]
            if mode == 'listmismatch':
                lines[1] = '7 100'
            send(('+OK\r\n' + ''.join(l + '\r\n' for l in lines) + '.\r\n').encode())
        elif cmd == 'RETR':
            try:
                body = MSGS[int(arg) - 1][1]
            except (ValueError, IndexError):
                send(b'-ERR no such message\r\n')
                continue
            send(b'+OK %d octets\r\n' % len(body) + stuff(body))
            if mode == 'noterm':
                break
            send(b'.\r\n')
        elif cmd == 'DELE':
            deleted.add(arg)
            log('DELE %d %s' % (n, arg))
            send(b'+OK marked\r\n')
        elif cmd == 'QUIT':
            log('QUIT %d %d deleted' % (n, len(deleted)))
            send(b'+OK bye\r\n')
            break
        else:
            send(b'-ERR unknown command\r\n')


MODES = ['good', 'nostls', 'stlsinject', 'overlong', 'baduidl', 'longuidl',
         'dupuidl', 'nouidl', 'noterm', 'listmismatch', 'tempfail', 'inuse',
         'badpass']


def main():
    serve(parser(__doc__, '--mode', MODES).parse_args(), session)


if __name__ == '__main__':
    main()
