#!/usr/bin/python3
"""imaptool -- inspect/modify an IMAP account from integration tests (stdlib).

usage: imaptool.py [CONN-OPTS] SUBCOMMAND [ARGS]

CONN-OPTS: --host H (127.0.0.1) --port N  --tls | --starttls | --plain
           --ca FILE (trust only this CA; default: system store)
           --insecure (no certificate/hostname check)  --servername NAME
           --user U  --password P | --xoauth2 TOKEN | --oauthbearer TOKEN
           --timeout S (30)

Subcommands (folder names are UTF-8 on the command line and in output;
use --raw-names to see/give the server's modified UTF-7):
  digest [--folder F]... [--no-uid]   FOLDER\\tUID\\tSHA256(BODY.PEEK[])\\tFLAGS
                                      sorted by folder, then UID; FLAGS sorted,
                                      space-separated, \\Recent omitted, "-" if none
  folders                             NAME\\tSPECIAL-USE|-\\tUIDVALIDITY\\tUIDNEXT\\tHIGHESTMODSEQ\\tMESSAGES
  count FOLDER                        number of messages
  uids FOLDER                         UIDs, one per line
  fetch FOLDER UID                    raw message bytes (BODY.PEEK[]) to stdout
  flags FOLDER UID                    flags (sorted, no \\Recent)
  flag FOLDER UID +\\Seen -\\Flagged +$Label ...
  move FOLDER UID DEST                prints the new UID (COPYUID) if known
  copy FOLDER UID DEST                prints the new UID (COPYUID) if known
  expunge FOLDER UID                  \\Deleted + UID EXPUNGE of that UID only
  append FOLDER FILE [--flags "\\Seen \\Flagged"] [--crlf]   prints new UID (APPENDUID)
  search-header FOLDER HEADER VALUE   matching UIDs, one per line
  create FOLDER | delete FOLDER | rename OLD NEW
  capability                          post-login capabilities, one line
  login                               just log in/out (exit status tells)
Exit: 0 ok, 1 server said NO/BAD or no such message, 2 usage,
      3 connection/TLS/login failure.
"""
import argparse, base64, hashlib, imaplib, re, socket, ssl, sys

# ------------------------------------------------------------ mUTF-7 (RFC 3501 5.1.3)
def mutf7_encode(s):
    out, buf = [], []
    def flush():
        if buf:
            b = ''.join(buf).encode('utf-16-be')
            out.append('&' + base64.b64encode(b).decode().rstrip('=').replace('/', ',') + '-')
            buf.clear()
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append('&-' if ch == '&' else ch)
        else:
            buf.append(ch)
    flush()
    return ''.join(out)

def mutf7_decode(s):
    def dec(m):
        x = m.group(1)
        if x == '':
            return '&'
        x = x.replace(',', '/')
        return base64.b64decode(x + '=' * (-len(x) % 4)).decode('utf-16-be')
    return re.sub(r'&([^-]*)-', dec, s)

# ------------------------------------------------------------ helpers
class Fail(Exception):
    def __init__(self, msg, code=1):
        super().__init__(msg); self.code = code

def q(s):
    """IMAP quoted string."""
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'

def check(typ, data, what):
    if typ != 'OK':
        raise Fail('%s: %s %s' % (what, typ, b' '.join(d if isinstance(d, bytes) else b'' for d in data or []).decode(errors='replace')))
    return data

def norm_flags(flags):
    fl = sorted(f for f in flags if f.lower() != '\\recent')
    return ' '.join(fl) if fl else '-'

FLAGS_RE = re.compile(rb'FLAGS \(([^)]*)\)')
UID_RE = re.compile(rb'UID (\d+)')

class Tool:
    def __init__(self, a):
        self.a = a
        self.raw = a.raw_names

    def enc(self, name):
        return name if self.raw else mutf7_encode(name)

    def dec(self, name):
        return name if self.raw else mutf7_decode(name)

    # -------------------------------------------------------- connection
    def ctx(self):
        a = self.a
        if a.insecure:
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
        else:
            c = ssl.create_default_context(cafile=a.ca) if a.ca else ssl.create_default_context()
        return c

    def connect(self):
        a = self.a
        sni = a.servername or a.host
        try:
            if a.mode == 'tls':
                ctx = self.ctx()
                class SSLConn(imaplib.IMAP4_SSL):
                    def _create_socket(self, timeout):
                        sock = imaplib.IMAP4._create_socket(self, timeout)
                        return ctx.wrap_socket(sock, server_hostname=sni)
                m = SSLConn(a.host, a.port, ssl_context=ctx, timeout=a.timeout)
            else:
                m = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
                if a.mode == 'starttls':
                    host = m.host; m.host = sni
                    try:
                        m.starttls(self.ctx())
                    finally:
                        m.host = host
        except (OSError, ssl.SSLError, imaplib.IMAP4.error) as e:
            raise Fail('connect %s:%s (%s): %s' % (a.host, a.port, a.mode, e), 3)
        try:
            if a.xoauth2:
                m.authenticate('XOAUTH2', lambda _: ('user=%s\x01auth=Bearer %s\x01\x01'
                                                     % (a.user, a.xoauth2)).encode())
            elif a.oauthbearer:
                m.authenticate('OAUTHBEARER', lambda _: ('n,a=%s,\x01host=%s\x01port=%s\x01auth=Bearer %s\x01\x01'
                                                         % (a.user, a.host, a.port, a.oauthbearer)).encode())
            else:
                m.login(a.user, a.password)
        except (OSError, ssl.SSLError, imaplib.IMAP4.error) as e:
            raise Fail('login as %s failed: %s' % (a.user, e), 3)
        self.m = m
        return m

    def select(self, folder, readonly=False):
        typ, data = self.m.select(q(self.enc(folder)), readonly=readonly)
        check(typ, data, 'SELECT %s' % folder)
        return int(data[0])

    def uid(self, *args):
        typ, data = self.m.uid(*args)
        return check(typ, data, 'UID %s' % args[0].upper())

    # -------------------------------------------------------- LIST parsing
    def list_folders(self):
        typ, data = self.m.list('""', '"*"')
        check(typ, data, 'LIST')
        out = []
        i = 0
        while i < len(data):
            d = data[i]
            if isinstance(d, tuple):           # name sent as a literal
                head, name = d[0], d[1]
                m = re.match(rb'\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") \{\d+\}$', head)
                attrs = m.group(1).decode().split() if m else []
                out.append((name.decode(), attrs))
            elif d:
                m = re.match(rb'\(([^)]*)\) (NIL|"(?:[^"\\]|\\.)*") (.*)$', d)
                if m:
                    name = m.group(3)
                    if name.startswith(b'"'):
                        name = re.sub(rb'\\(.)', rb'\1', name[1:-1])
                    out.append((name.decode(), m.group(1).decode().split()))
            i += 1
        return out

    def selectable(self):
        return [n for n, at in self.list_folders()
                if not any(x.lower() in ('\\noselect', '\\nonexistent') for x in at)]

    # -------------------------------------------------------- subcommands
    def cmd_digest(self, o):
        folders = [self.enc(f) for f in o.folder] if o.folder else self.selectable()
        lines = []
        for f in folders:
            typ, data = self.m.select(q(f), readonly=True)
            check(typ, data, 'SELECT %s' % self.dec(f))
            if int(data[0]) == 0:
                continue
            uids = self.uid('SEARCH', None, 'ALL')[0].split()
            for i in range(0, len(uids), 200):
                chunk = uids[i:i + 200]
                data = self.uid('FETCH', b','.join(chunk).decode(), '(UID FLAGS BODY.PEEK[])')
                for uid, body, flags in self.parse_fetch(data):
                    lines.append((self.dec(f), uid, hashlib.sha256(body).hexdigest(), norm_flags(flags)))
        lines.sort(key=lambda l: (l[0], l[1]))
        for f, uid, h, fl in lines:
            if o.no_uid:
                print('%s\t%s\t%s' % (f, h, fl))
            else:
                print('%s\t%d\t%s\t%s' % (f, uid, h, fl))

    @staticmethod
    def parse_fetch(data):
        """yields (uid, literal_bytes, flags) from imaplib FETCH data."""
        i = 0
        while i < len(data):
            d = data[i]
            if isinstance(d, tuple):
                meta = d[0]
                body = d[1]
                if i + 1 < len(data) and isinstance(data[i + 1], bytes):
                    meta += b' ' + data[i + 1]; i += 1
                u = UID_RE.search(meta); fm = FLAGS_RE.search(meta)
                if u:
                    yield (int(u.group(1)), body,
                           fm.group(1).decode().split() if fm else [])
            i += 1

    def cmd_folders(self, o):
        names = self.list_folders()
        for name, attrs in names:
            if any(x.lower() in ('\\noselect', '\\nonexistent') for x in attrs):
                continue
            su = [x for x in attrs if x.lower() in (
                '\\all', '\\archive', '\\drafts', '\\flagged', '\\junk', '\\sent', '\\trash', '\\important')]
            typ, data = self.m.status(q(name), '(UIDVALIDITY UIDNEXT HIGHESTMODSEQ MESSAGES)')
            check(typ, data, 'STATUS %s' % name)
            st = b' '.join(x if isinstance(x, bytes) else x[0] for x in data)
            val = dict((k.decode(), v.decode()) for k, v in
                       re.findall(rb'(UIDVALIDITY|UIDNEXT|HIGHESTMODSEQ|MESSAGES) (\d+)', st))
            print('\t'.join([self.dec(name), ' '.join(su) or '-', val.get('UIDVALIDITY', '-'),
                             val.get('UIDNEXT', '-'), val.get('HIGHESTMODSEQ', '-'),
                             val.get('MESSAGES', '-')]))

    def cmd_count(self, o):
        print(self.select(o.folder, readonly=True))

    def cmd_uids(self, o):
        self.select(o.folder, readonly=True)
        for u in sorted(int(x) for x in self.uid('SEARCH', None, 'ALL')[0].split()):
            print(u)

    def fetch_one(self, folder, uid, what):
        self.select(folder, readonly=True)
        res = list(self.parse_fetch(self.uid('FETCH', str(uid), what)))
        res = [r for r in res if r[0] == int(uid)]
        if not res:
            raise Fail('no message with UID %s in %s' % (uid, folder))
        return res[0]

    def cmd_fetch(self, o):
        _, body, _ = self.fetch_one(o.folder, o.uid, '(UID BODY.PEEK[])')
        sys.stdout.buffer.write(body)

    def cmd_flags(self, o):
        self.select(o.folder, readonly=True)
        data = self.uid('FETCH', str(o.uid), '(UID FLAGS)')
        for d in data:
            if isinstance(d, bytes) and UID_RE.search(d) and int(UID_RE.search(d).group(1)) == int(o.uid):
                fm = FLAGS_RE.search(d)
                print(norm_flags(fm.group(1).decode().split() if fm else []))
                return
        raise Fail('no message with UID %s in %s' % (o.uid, o.folder))

    def cmd_flag(self, o):
        self.select(o.folder)
        self.exists(o.uid)
        for ch in o.changes:
            if ch[:1] not in '+-' or len(ch) < 2:
                raise Fail('flag change must look like +\\Seen or -\\Flagged: %r' % ch, 2)
            self.uid('STORE', str(o.uid), ch[0] + 'FLAGS.SILENT', '(%s)' % ch[1:])

    def exists(self, uid):
        d = self.uid('SEARCH', None, 'UID', str(uid))[0].split()
        if not d:
            raise Fail('no message with UID %s' % uid)

    def _copyuid(self, typ, data):
        for src in (self.m.untagged_responses.get('COPYUID') or [], data or []):
            for d in src:
                if isinstance(d, bytes):
                    m = re.search(rb'(\d+) (\S+) (\S+)\]?', d)
                    if m:
                        return m.group(3).decode()
        return None

    def cmd_move(self, o, verb='MOVE'):
        self.select(o.folder)
        self.exists(o.uid)
        self.m.untagged_responses.pop('COPYUID', None)
        typ, data = self.m._simple_command('UID', verb, str(o.uid), q(self.enc(o.dest)))
        check(typ, data, 'UID %s' % verb)
        # COPYUID is in the tagged OK (MOVE: untagged OK) response code
        cu = self.m.untagged_responses.pop('COPYUID', None) or [
            d for d in data if isinstance(d, bytes) and b'COPYUID' in d]
        for d in cu or []:
            m = re.search(rb'(?:COPYUID )?\d+ \S+ (\d+)', d)
            if m:
                print(m.group(1).decode()); return

    def cmd_copy(self, o):
        self.cmd_move(o, 'COPY')

    def cmd_expunge(self, o):
        self.select(o.folder)
        self.exists(o.uid)
        self.uid('STORE', str(o.uid), '+FLAGS.SILENT', '(\\Deleted)')
        typ, data = self.m._simple_command('UID', 'EXPUNGE', str(o.uid))
        check(typ, data, 'UID EXPUNGE')

    def cmd_append(self, o):
        body = open(o.file, 'rb').read()
        if o.crlf:
            body = re.sub(rb'(?<!\r)\n', b'\r\n', body)
        flags = '(%s)' % o.flags if o.flags else None
        self.m.untagged_responses.pop('APPENDUID', None)
        typ, data = self.m.append(q(self.enc(o.folder)), flags, None, body)
        check(typ, data, 'APPEND')
        for d in (self.m.untagged_responses.pop('APPENDUID', None) or []) + list(data):
            if isinstance(d, bytes):
                m = re.search(rb'(?:APPENDUID )?\d+ (\d+)', d)
                if m:
                    print(m.group(1).decode()); return

    def cmd_search_header(self, o):
        self.select(o.folder, readonly=True)
        self.m.literal = None
        typ, data = self.m.uid('SEARCH', 'CHARSET', 'UTF-8', 'HEADER', q(o.header), q(o.value)) \
            if all(ord(c) < 128 for c in o.value) else (None, None)
        if typ is None:
            self.m.literal = o.value.encode()
            typ, data = self.m.uid('SEARCH', 'CHARSET', 'UTF-8', 'HEADER', q(o.header))
        check(typ, data, 'UID SEARCH')
        for u in sorted(int(x) for x in (data[0] or b'').split()):
            print(u)

    def cmd_create(self, o):
        check(*self.m.create(q(self.enc(o.folder))), what='CREATE')

    def cmd_delete(self, o):
        check(*self.m.delete(q(self.enc(o.folder))), what='DELETE')

    def cmd_rename(self, o):
        check(*self.m.rename(q(self.enc(o.old)), q(self.enc(o.new))), what='RENAME')

    def cmd_capability(self, o):
        typ, data = self.m.capability()
        check(typ, data, 'CAPABILITY')
        print(data[0].decode())

    def cmd_login(self, o):
        pass


def main(argv):
    p = argparse.ArgumentParser(prog='imaptool.py', description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(__doc__.split('\n')[1:]))
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int)
    g = p.add_mutually_exclusive_group()
    p.set_defaults(mode='tls')
    p.add_argument('--tls', dest='mode', action='store_const', const='tls')
    p.add_argument('--starttls', dest='mode', action='store_const', const='starttls')
    p.add_argument('--plain', dest='mode', action='store_const', const='plain')
    p.add_argument('--ca')
    p.add_argument('--insecure', action='store_true')
    p.add_argument('--servername')
    p.add_argument('--user', required=True)
    p.add_argument('--password', default='')
    p.add_argument('--xoauth2')
    p.add_argument('--oauthbearer')
    p.add_argument('--timeout', type=float, default=30)
    p.add_argument('--raw-names', action='store_true')
    sp = p.add_subparsers(dest='cmd', required=True)
    s = sp.add_parser('digest'); s.add_argument('--folder', action='append', default=[])
    s.add_argument('--no-uid', action='store_true')
    sp.add_parser('folders')
    for name in ('count', 'uids', 'create', 'delete'):
        sp.add_parser(name).add_argument('folder')
    for name in ('fetch', 'flags', 'expunge'):
        s = sp.add_parser(name); s.add_argument('folder'); s.add_argument('uid', type=int)
    s = sp.add_parser('flag'); s.add_argument('folder'); s.add_argument('uid', type=int)
    s.add_argument('changes', nargs='+')
    for name in ('move', 'copy'):
        s = sp.add_parser(name); s.add_argument('folder'); s.add_argument('uid', type=int)
        s.add_argument('dest')
    s = sp.add_parser('append'); s.add_argument('folder'); s.add_argument('file')
    s.add_argument('--flags'); s.add_argument('--crlf', action='store_true')
    s = sp.add_parser('search-header'); s.add_argument('folder'); s.add_argument('header')
    s.add_argument('value')
    s = sp.add_parser('rename'); s.add_argument('old'); s.add_argument('new')
    sp.add_parser('capability'); sp.add_parser('login')
    # flag changes like "-\Seen" look like options to argparse: protect them
    argv = [('\x00' + x) if re.match(r'^[-+]\\', x) else x for x in argv]
    a = p.parse_args(argv)
    if a.cmd == 'flag':
        a.changes = [c.lstrip('\x00') for c in a.changes]
    if a.port is None:
        a.port = 993 if a.mode == 'tls' else 143
    t = Tool(a)
    try:
        t.connect()
        try:
            getattr(t, 'cmd_' + a.cmd.replace('-', '_'))(a)
        finally:
            try:
                t.m.logout()
            except Exception:
                pass
    except Fail as e:
        print('imaptool: %s' % e, file=sys.stderr)
        return e.code
    except (OSError, ssl.SSLError, imaplib.IMAP4.abort, EOFError) as e:
        print('imaptool: connection error: %s' % e, file=sys.stderr)
        return 3
    except imaplib.IMAP4.error as e:
        print('imaptool: %s' % e, file=sys.stderr)
        return 1
    return 0

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
