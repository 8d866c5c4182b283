#!/usr/bin/python3
"""smtpsink.py -- a scriptable SMTP server on 127.0.0.1 for client tests.

usage: smtpsink.py [--port 0] [--dir DIR] [--log FILE] [options]

Listens on 127.0.0.1:PORT (0 = kernel picks); the first stdout line is the
port (flushed); serves until SIGTERM/SIGINT (exit 0).  Written to RFC 5321
(asyncio, no aiosmtpd), so that it can also misbehave on purpose.

Each accepted message is stored as DIR/NNNN.eml (the message exactly as
received, dot-stuffing undone, CRLF kept) and DIR/NNNN.env (line 1: the
MAIL FROM line, then one "RCPT TO" line per accepted recipient).

--log FILE, one line per event, flushed:
  conn N open | conn N closed
  C N <line>              every command line, verbatim (secrets included,
                          so tests can grep for them)
  batch N CMD,CMD,...     the commands read before the server wrote any
                          reply: with a pipelining client "MAIL,RCPT,DATA"
                          arrive together; one by one otherwise
  CREDENTIALS N <mech>    an AUTH command arrived
  data N <bytes>          message received (before the final reply)
  drop N                  connection cut on purpose
  relayed N <reply>       forwarded to LMTP (--relay-lmtp)

Options:
  --no-pipelining         do not advertise PIPELINING
  --pipeline-wait S       after MAIL FROM with nothing more buffered, wait
                          up to S seconds (default 1) for the client's
                          next pipelined command before answering, so the
                          batch log does not depend on TCP segmentation
  --size N                advertise SIZE N; MAIL ... SIZE=n > N -> 552
  --no-8bitmime           do not advertise 8BITMIME
  --smtputf8              advertise SMTPUTF8
  --reply-rcpt ADDR=REPLY RCPT TO:<ADDR> gets REPLY ("550 5.1.1 no such user")
  --reply-mail REPLY      every MAIL FROM gets REPLY
  --fail-data-once CODE   the first message gets CODE ("451" -> "451 4.3.0
                          try again later"; a 5xx gets 5.x.x); later ones 250
  --delay-data S          wait S seconds before answering each message
                          (a slow server: concurrent senders overlap)
  --drop-mid-data B       close the connection after B bytes of message
  --tls CERT KEY          TLS certificate; with --implicit-tls TLS from the
                          first byte, else STARTTLS is offered
  --implicit-tls
  --refuse-starttls       offer STARTTLS but answer it "454 4.7.0 not now"
  --auth PASSWORD         offer AUTH PLAIN LOGIN; any user with PASSWORD
                          -> 235, else 535 5.7.8
  --offer-auth            offer AUTH PLAIN LOGIN without checking anything
                          (235 for any credentials; for no-TLS tests)
  --hostile MODE          answer EHLO with: garbage (binary junk),
                          mismatch ("250-x" then "251 y"), longline (a
                          10 MB line), badcode ("2500 ok"), then close
  --relay-lmtp PORT       forward each message to LMTP 127.0.0.1:PORT (as
                          Dovecot submission's relay, DC_RELAY_PORT); the
                          client gets LMTP's answer (first recipient's)
"""
import argparse, asyncio, base64, os, signal, smtplib, ssl, sys

A = None
LOGF = None
CONN_N = 0
COUNTER = {'msg': 0, 'data_failed': False}


def log(msg):
    if LOGF:
        LOGF.write(msg + '\n')
        LOGF.flush()


def ehlo_lines(sess):
    ext = ['localhost smtpsink']
    if not A.no_pipelining:
        ext.append('PIPELINING')
    if A.size is not None:
        ext.append('SIZE %d' % A.size)
    if not A.no_8bitmime:
        ext.append('8BITMIME')
    if A.smtputf8:
        ext.append('SMTPUTF8')
    ext.append('ENHANCEDSTATUSCODES')
    if A.tls and not A.implicit_tls and not sess['tls']:
        ext.append('STARTTLS')
    if A.auth is not None or A.offer_auth:
        ext.append('AUTH PLAIN LOGIN')
    return ''.join('250%s%s\r\n' % ('-' if i < len(ext) - 1 else ' ', e)
                   for i, e in enumerate(ext))


def hostile_reply(mode):
    if mode == 'garbage':
        return bytes(range(256)) * 4 + b'\r\n'
    if mode == 'mismatch':
        return b'250-localhost\r\n251 oops\r\n'
    if mode == 'longline':
        return b'250-' + b'A' * (10 * 1024 * 1024) + b'\r\n250 ok\r\n'
    return b'2500 ok\r\n'


def data_fail_reply(code):
    c = int(code)
    return '%d %d.3.0 %s\r\n' % (c, c // 100,
                                 'try again later' if c < 500 else 'rejected')


def relay(env_from, rcpts, data):
    try:
        with smtplib.LMTP('127.0.0.1', A.relay_lmtp) as l:
            refused = l.sendmail(env_from, rcpts, data)
        if refused:
            code, text = list(refused.values())[0]
            return '%d %s\r\n' % (code, text.decode(errors='replace'))
        return '250 2.0.0 OK relayed to LMTP\r\n'
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        return '%d %s\r\n' % (code, text.decode(errors='replace'))
    except Exception as e:  # noqa: BLE001 - report, keep serving
        return '451 4.4.0 relay failed: %s\r\n' % str(e).replace('\r\n', ' ')


def addr_of(line):
    s, e = line.find('<'), line.find('>')
    return line[s + 1:e] if 0 <= s < e else ''


class Session:
    def __init__(self, reader, writer, n):
        self.r, self.w, self.n = reader, writer, n
        self.buf = b''
        self.sess = {'tls': bool(A.implicit_tls)}
        self.reset()

    def reset(self):
        self.mail = None
        self.rcpts = []

    async def fill(self, timeout=None):
        if timeout is None:
            d = await self.r.read(65536)
        else:
            try:
                d = await asyncio.wait_for(self.r.read(65536), timeout)
            except asyncio.TimeoutError:
                return True
        if not d:
            return False
        self.buf += d
        return True

    def take_line(self):
        i = self.buf.find(b'\n')
        if i < 0:
            return None
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return line.rstrip(b'\r\n').decode('utf-8', 'replace')

    async def send(self, text):
        self.w.write(text if isinstance(text, bytes) else text.encode())
        await self.w.drain()

    async def read_data(self):
        """Message up to CRLF.CRLF; None if cut or dropped on purpose."""
        while True:
            i = self.buf.find(b'\r\n.\r\n')
            if self.buf.startswith(b'.\r\n'):
                raw, self.buf = b'', self.buf[3:]
                break
            if i >= 0:
                raw, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                break
            if A.drop_mid_data is not None and len(self.buf) >= A.drop_mid_data:
                log('drop %d' % self.n)
                return None
            if not await self.fill():
                return None
        lines = raw.split(b'\r\n')
        return b'\r\n'.join(l[1:] if l.startswith(b'.') else l for l in lines)

    async def auth(self, line):
        parts = line.split()
        mech = parts[1].upper() if len(parts) > 1 else ''
        log('CREDENTIALS %d %s' % (self.n, mech))
        if mech == 'PLAIN':
            ir = parts[2] if len(parts) > 2 else None
            if ir is None:
                await self.send('334 \r\n')
                while (ir := self.take_line()) is None:
                    if not await self.fill():
                        return
                log('C %d %s' % (self.n, ir))
            try:
                pw = base64.b64decode(ir).split(b'\0')[2].decode()
            except Exception:  # noqa: BLE001
                pw = None
        elif mech == 'LOGIN':
            got = []
            for prompt in ('VXNlcm5hbWU6', 'UGFzc3dvcmQ6'):
                await self.send('334 %s\r\n' % prompt)
                while (l := self.take_line()) is None:
                    if not await self.fill():
                        return
                log('C %d %s' % (self.n, l))
                got.append(l)
            try:
                pw = base64.b64decode(got[1]).decode()
            except Exception:  # noqa: BLE001
                pw = None
        else:
            await self.send('504 5.5.4 unrecognized mechanism\r\n')
            return
        if A.offer_auth or (A.auth is not None and pw == A.auth):
            await self.send('235 2.7.0 Authentication successful\r\n')
        else:
            await self.send('535 5.7.8 Authentication credentials invalid\r\n')

    def command(self, line):
        """Reply text for one ordinary command, or a tag for special ones."""
        verb = line.split(' ', 1)[0].upper()
        if verb in ('EHLO', 'HELO'):
            self.reset()
            if A.hostile:
                return 'HOSTILE'
            return ehlo_lines(self.sess) if verb == 'EHLO' else '250 localhost\r\n'
        if verb == 'MAIL':
            if A.reply_mail:
                return A.reply_mail + '\r\n'
            up = line.upper()
            if A.size is not None and ' SIZE=' in up:
                try:
                    n = int(up.split(' SIZE=')[1].split()[0])
                except ValueError:
                    return '501 5.5.4 bad SIZE\r\n'
                if n > A.size:
                    return '552 5.3.4 message size exceeds fixed limit\r\n'
            self.mail = line
            self.rcpts = []
            return '250 2.1.0 Ok\r\n'
        if verb == 'RCPT':
            if self.mail is None:
                return '503 5.5.1 need MAIL first\r\n'
            addr = addr_of(line)
            if addr in A.rcpt_replies:
                return A.rcpt_replies[addr] + '\r\n'
            self.rcpts.append(line)
            return '250 2.1.5 Ok\r\n'
        if verb == 'DATA':
            if self.mail is None or not self.rcpts:
                return '554 5.5.1 no valid recipients\r\n'
            return '354 End data with <CR><LF>.<CR><LF>\r\n'
        if verb == 'RSET':
            self.reset()
            return '250 2.0.0 Ok\r\n'
        if verb == 'NOOP':
            return '250 2.0.0 Ok\r\n'
        if verb == 'QUIT':
            return 'QUIT'
        if verb == 'STARTTLS':
            return 'STARTTLS'
        if verb == 'AUTH':
            return 'AUTH'
        return '502 5.5.2 command not recognized\r\n'

    async def message(self):
        data = await self.read_data()
        if data is None:
            return False
        log('data %d %d' % (self.n, len(data)))
        if A.delay_data:
            await asyncio.sleep(A.delay_data)
        if A.fail_data_once and not COUNTER['data_failed']:
            COUNTER['data_failed'] = True
            reply = data_fail_reply(A.fail_data_once)
        else:
            COUNTER['msg'] += 1
            base = os.path.join(A.dir, '%04d' % COUNTER['msg'])
            with open(base + '.eml', 'wb') as f:
                f.write(data)
            with open(base + '.env', 'w') as f:
                f.write('\n'.join([self.mail] + self.rcpts) + '\n')
            if A.relay_lmtp:
                reply = await asyncio.get_running_loop().run_in_executor(
                    None, relay, addr_of(self.mail),
                    [addr_of(r) for r in self.rcpts], data)
                log('relayed %d %s' % (self.n, reply.strip()))
            else:
                reply = '250 2.0.0 Ok: queued as %04d\r\n' % COUNTER['msg']
        self.reset()
        await self.send(reply)
        return True

    async def run(self):
        await self.send('220 localhost ESMTP smtpsink\r\n')
        while True:
            if b'\n' not in self.buf and not await self.fill():
                return
            batch, replies, special = [], [], None
            while (line := self.take_line()) is not None:
                log('C %d %s' % (self.n, line))
                batch.append(line.split(' ', 1)[0].split(':')[0].upper())
                rep = self.command(line)
                if rep in ('HOSTILE', 'QUIT', 'STARTTLS', 'AUTH') or \
                        rep.startswith('354'):
                    special = (rep, line)
                    break
                replies.append(rep)
                # a pipelining client sends RCPT/DATA right behind MAIL
                if batch[-1] == 'MAIL' and b'\n' not in self.buf and \
                        not A.no_pipelining and A.pipeline_wait > 0:
                    if not await self.fill(A.pipeline_wait):
                        return
            log('batch %d %s' % (self.n, ','.join(batch)))
            if replies:
                await self.send(''.join(replies))
            if special is None:
                continue
            rep, line = special
            if rep == 'HOSTILE':
                await self.send(hostile_reply(A.hostile))
                return
            if rep == 'QUIT':
                await self.send('221 2.0.0 Bye\r\n')
                return
            if rep == 'AUTH':
                await self.auth(line)
            elif rep == 'STARTTLS':
                if A.refuse_starttls or not A.tls or self.sess['tls']:
                    await self.send('454 4.7.0 TLS not available now\r\n')
                    continue
                await self.send('220 2.0.0 Ready to start TLS\r\n')
                self.buf = b''
                await self.w.start_tls(tls_ctx())
                self.sess['tls'] = True
                self.reset()
            else:
                await self.send(rep)
                if not await self.message():
                    return


def tls_ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(A.tls[0], A.tls[1])
    return c


async def handle(reader, writer):
    global CONN_N
    CONN_N += 1
    n = CONN_N
    log('conn %d open' % n)
    try:
        await Session(reader, writer, n).run()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as e:
        log('conn %d error %s' % (n, e))
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001
            pass
        log('conn %d closed' % n)


async def main():
    srv = await asyncio.start_server(
        handle, '127.0.0.1', A.port,
        ssl=tls_ctx() if A.tls and A.implicit_tls else None)
    print(srv.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with srv:
        await stop.wait()


if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--dir', default='.')
    p.add_argument('--log')
    p.add_argument('--no-pipelining', action='store_true')
    p.add_argument('--pipeline-wait', type=float, default=1.0)
    p.add_argument('--size', type=int)
    p.add_argument('--no-8bitmime', action='store_true')
    p.add_argument('--smtputf8', action='store_true')
    p.add_argument('--reply-rcpt', action='append', default=[])
    p.add_argument('--reply-mail')
    p.add_argument('--fail-data-once')
    p.add_argument('--delay-data', type=float, default=0.0)
    p.add_argument('--drop-mid-data', type=int)
    p.add_argument('--tls', nargs=2, metavar=('CERT', 'KEY'))
    p.add_argument('--implicit-tls', action='store_true')
    p.add_argument('--refuse-starttls', action='store_true')
    p.add_argument('--auth')
    p.add_argument('--offer-auth', action='store_true')
    p.add_argument('--hostile', choices=['garbage', 'mismatch', 'longline',
                                          'badcode'])
    p.add_argument('--relay-lmtp', type=int)
    A = p.parse_args()
    A.rcpt_replies = dict(r.split('=', 1) for r in A.reply_rcpt)
    os.makedirs(A.dir, exist_ok=True)
    if A.log:
        LOGF = open(A.log, 'a')
    asyncio.run(main())
    sys.exit(0)
