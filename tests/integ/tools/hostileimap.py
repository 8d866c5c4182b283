#!/usr/bin/python3
"""hostileimap.py -- a scripted IMAP4rev1 server that misbehaves on purpose.

usage: hostileimap.py --scenario NAME [--port 0] [--log FILE] [--first-only]

Plain TCP on 127.0.0.1:PORT (0 = kernel picks); the first stdout line is the
port (flushed); serves until SIGTERM/SIGINT (exit 0).  Stdlib only.

It plays a real-looking session: greeting with
  * OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] hostile ready
(no CONDSTORE/QRESYNC), CAPABILITY, LOGIN (any user/password), LIST,
SELECT (FLAGS, EXISTS, RECENT, UIDVALIDITY, UIDNEXT), UID FETCH (UID, FLAGS,
RFC822.SIZE, INTERNALDATE, BODY.PEEK[] and BODY.PEEK[HEADER.FIELDS (...)]),
UID SEARCH ALL, NOOP, LOGOUT.  Mailboxes: INBOX with 3 messages (UIDs 1-3)
and Archive with 2 (UIDs 1-2), UIDVALIDITY 777; the evil-names and
bad-utf8-name scenarios add folders.  Cases that are only a server script
and the client's outcome are case files instead (tests/data/cases,
tools/scriptserver.py).  Message N of folder F has Subject "F message N".

--first-only  misbehave on the first connection only; later connections
              get the well-behaved server with the same mailboxes (so a
              test can check what a clean re-run recovers).

Scenarios (what goes wrong; "body FETCH" = UID FETCH with BODY.PEEK[]):
  normal          nothing
  huge            body FETCH: BODY[] {314572800} (300 MiB) announced, 64 KiB
                  sent, then the server stalls (never closes)
  huge-close      same, 1 MiB sent, then close
  evil-names      LIST adds "../../etc", "a/../../b", "..", "/abs",
                  "&AC8ALgAu-" (modified UTF-7 for "/..") and the pair
                  "x/." / "x/_", one message each
  deep-nesting    SELECT INBOX: an unsolicited FETCH with a BODYSTRUCTURE
                  30,000 levels deep (60 KB) before the tagged OK
  long-line       SELECT INBOX: "* OK " and then "x" without end (up to
                  1 GiB, or until the client closes)
  literal-wrap    body FETCH: BODY[] {4294967297} (2^32 + 1) followed by
                  one byte, ")" and the other answers, as if it were 1 byte
  literal-huge    body FETCH: BODY[] {999999999999} and then data without
                  end (up to 1 GiB, or until the client closes)
  flood-fetch     body FETCH: "* OK flood" lines without end (up to 1 GiB,
                  or until the client closes) instead of the answers
  flood-idle      IDLE: "* N EXISTS" lines without end (up to 1 GiB, or
                  until the client closes), DONE ignored
  body-nil        body FETCH: INBOX UID 2 answered with BODY[] NIL
  size-lie        body FETCH: INBOX UID 2 with RFC822.SIZE 99999 (the body
                  is ~300 bytes), UID 3 with its real size and BODY[] {0}
  bad-utf8-name   LIST adds "Caf\xe9" as raw Latin-1 bytes (not UTF-8, not
                  modified UTF-7), one message
  uidnext-back    INBOX says UIDNEXT 10 on the first connection; on later
                  ones it has a 4th message (UID 4) and says UIDNEXT 5
  idle-split      IDLE: "* 4 EXISTS" and the first half of "* 0 RECENT";
                  the other half and the tagged OK only after DONE
  control-names   LIST adds "Bad<ESC>[31mBox<BEL>&AJs-X" (an ESC sequence
                  and BEL: not valid modified UTF-7, so taken as it is) and
                  "Csi&AJs-31m" (the C1 control U+009B, CSI), one message
                  each, whose Subject carries the name raw
  permflags       SELECT INBOX: also "* OK [PERMANENTFLAGS (%Seen \\*)]",
                  a list whose first flag is malformed (libetpan 1.9.4
                  frees a NULL list on it)
IDLE answers "+ idling" and waits for DONE; in the flood scenarios "S N flooded B bytes"
is logged when the client closed (or the cap was reached).

Log lines (--log): conn N open|closed, C N <client line>, S N <note>.
"""
import re, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from fakeserver import LineConn, log, parser, serve

UIDVALIDITY = 777


def message(folder, n):
    return ('From: Sender %d <sender%d@example.test>\r\n'
            'To: alice@example.test\r\n'
            'Subject: %s message %d\r\n'
            'Date: Mon, 1 Jan 2024 10:%02d:00 +0000\r\n'
            'Message-ID: <%s.%d@hostile.example.test>\r\n'
            'MIME-Version: 1.0\r\n'
            'Content-Type: text/plain; charset=us-ascii\r\n'
            '\r\n'
            'Body of message %d in %s.\r\n' % (
                n, n, folder, n, n % 60,
                re.sub(r'[^A-Za-z0-9]', '_', folder), n, n, folder)).encode()


class Mailbox:
    def __init__(self, name, count):
        self.name = name
        self.msgs = []  # (uid, flags, body)
        for i in range(1, count + 1):
            self.msgs.append((i, '', message(name, i)))

    def uidnext(self):
        return (self.msgs[-1][0] + 1) if self.msgs else 1


def mailboxes(scenario):
    boxes = [Mailbox('INBOX', 3), Mailbox('Archive', 2)]
    if scenario == 'evil-names':
        for n in ('../../etc', 'a/../../b', '..', '/abs', '&AC8ALgAu-',
                  'x/.', 'x/_'):
            boxes.append(Mailbox(n, 1))
    if scenario == 'bad-utf8-name':
        boxes.append(Mailbox('Caf\xe9', 1))
    if scenario == 'control-names':
        boxes.append(Mailbox('Bad\x1b[31mBox\x07&AJs-X', 1))
        boxes.append(Mailbox('Csi&AJs-31m', 1))
    return boxes


def quote(s):
    if re.fullmatch(r'[A-Za-z0-9_.\-/&+]+', s) and s.upper() != 'NIL':
        return s
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


class Conn(LineConn):
    def read_exact(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_command(self):
        """One command line with synchronizing literals resolved (as text)."""
        line = self.readline()
        if line is None:
            return None
        out = line
        while True:
            m = re.search(rb'\{(\d+)\+?\}$', out)
            if not m:
                return out
            self.send(b'+ go ahead\r\n')
            data = self.read_exact(int(m.group(1)))
            rest = self.readline()
            if data is None or rest is None:
                return None
            out = out[:m.start()] + b'"' + data.replace(b'\\', b'\\\\').replace(b'"', b'\\"') + b'"' + rest


def tokens(s):
    """Splits an IMAP argument string into atoms / quoted strings / (...)."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == ' ':
            i += 1
        elif c == '"':
            j, v = i + 1, ''
            while j < len(s) and s[j] != '"':
                if s[j] == '\\' and j + 1 < len(s):
                    j += 1
                v += s[j]
                j += 1
            out.append(v)
            i = j + 1
        elif c == '(':
            depth, j = 0, i
            while j < len(s):
                if s[j] == '(':
                    depth += 1
                elif s[j] == ')':
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            out.append(s[i:j + 1])
            i = j + 1
        else:
            j = i
            while j < len(s) and s[j] != ' ':
                if s[j] == '[':  # BODY.PEEK[HEADER.FIELDS (A B)]
                    j = s.index(']', j)
                j += 1
            out.append(s[i:j])
            i = j
    return out


def parse_set(spec, uids):
    """UIDs of the mailbox matched by an IMAP sequence set of UIDs."""
    top = uids[-1] if uids else 0
    want = set()
    for part in spec.split(','):
        if ':' in part:
            a, b = part.split(':', 1)
        else:
            a = b = part
        a = top if a == '*' else int(a)
        b = top if b == '*' else int(b)
        lo, hi = min(a, b), max(a, b)
        for u in uids:
            if lo <= u <= hi:
                want.add(u)
    return want


class Session:
    def __init__(self, sock, n, args):
        self.c = Conn(sock)
        self.n = n
        self.sc = args.scenario
        if args.first_only and n > 1:
            self.sc = 'normal'
        self.boxes = mailboxes(args.scenario)
        if self.sc == 'uidnext-back' and n > 1:
            self.boxes[0].msgs.append((4, '', message('INBOX', 4)))
        self.sel = None

    def note(self, msg):
        log('S %d %s' % (self.n, msg))

    def box(self, name):
        for b in self.boxes:
            if b.name == name or (name.upper() == 'INBOX' and b.name == 'INBOX'):
                return b
        return None

    def run(self):
        c = self.c
        c.send(b'* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] hostile ready\r\n')
        while True:
            line = c.read_command()
            if line is None:
                return
            text = line.decode('latin-1')
            log('C %d %s' % (self.n, text))
            parts = text.split(' ', 2)
            tag = parts[0]
            cmd = parts[1].upper() if len(parts) > 1 else ''
            rest = parts[2] if len(parts) > 2 else ''
            if cmd == 'UID' and rest:
                sub, _, rest = rest.partition(' ')
                cmd = 'UID ' + sub.upper()
            h = getattr(self, 'cmd_' + cmd.replace(' ', '_').lower(), None)
            if h is None:
                c.send(('%s BAD unknown command\r\n' % tag).encode())
                continue
            if h(tag, rest) is False:
                return

    def ok(self, tag, text='done'):
        self.c.send(('%s OK %s\r\n' % (tag, text)).encode())

    def cmd_capability(self, tag, rest):
        self.c.send(b'* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n')
        self.ok(tag, 'CAPABILITY completed')

    def cmd_login(self, tag, rest):
        self.ok(tag, '[CAPABILITY IMAP4rev1 IDLE UIDPLUS] logged in')

    def flood(self, first, unit, cap=1 << 30):
        """Sends FIRST, then UNIT again and again until CAP bytes or the
        client closes; logs how much went out."""
        sent = 0
        chunk = unit * max(1, (64 << 10) // len(unit))
        try:
            self.c.send(first)
            sent = len(first)
            while sent < cap:
                self.c.send(chunk)
                sent += len(chunk)
        except OSError:
            pass
        self.note('flooded %d bytes' % sent)
        return False

    def cmd_idle(self, tag, rest):
        c = self.c
        c.send(b'+ idling\r\n')
        if self.sc == 'flood-idle':
            n = len(self.sel.msgs) if self.sel else 0
            return self.flood(b'', b'* %d EXISTS\r\n' % (n + 1))
        if self.sc == 'idle-split':
            c.send(b'* 4 EXISTS\r\n* 0 REC')
            self.note('sent half a line')
        line = c.readline()
        if line is None:
            return False
        log('C %d %s' % (self.n, line.decode('latin-1')))
        if self.sc == 'idle-split':
            c.send(b'ENT\r\n')
            self.note('sent the other half after DONE')
        self.ok(tag, 'IDLE terminated')

    def cmd_noop(self, tag, rest):
        self.ok(tag)

    def cmd_logout(self, tag, rest):
        self.c.send(('* BYE bye\r\n%s OK LOGOUT completed\r\n' % tag).encode())
        return False

    def cmd_list(self, tag, rest):
        out = []
        for b in self.boxes:
            flags = '\\HasNoChildren'
            if b.name == 'Archive':
                flags += ' \\Archive'
            out.append('* LIST (%s) "/" %s\r\n' % (flags, quote(b.name)))
        # Names go out as Latin-1 bytes: "Caf\xe9" is raw 8-bit on the wire.
        self.c.send(''.join(out).encode('latin-1'))
        self.ok(tag, 'LIST completed')

    def cmd_select(self, tag, rest):
        t = tokens(rest)
        b = self.box(t[0]) if t else None
        if b is None:
            self.c.send(('%s NO [NONEXISTENT] no such mailbox\r\n' % tag).encode())
            return
        self.sel = b
        out = ['* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n',
               '* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] ok\r\n',
               '* %d EXISTS\r\n' % len(b.msgs), '* 0 RECENT\r\n',
               '* OK [UIDVALIDITY %d] UIDs valid\r\n' % UIDVALIDITY]
        uidnext = b.uidnext()
        if self.sc == 'uidnext-back' and b.name == 'INBOX' and self.n == 1:
            uidnext = 10
        out.append('* OK [UIDNEXT %d] next\r\n' % uidnext)
        self.c.send(''.join(out).encode())
        if b.name == 'INBOX' and self.sc == 'deep-nesting':
            self.c.send(b'* 1 FETCH (BODYSTRUCTURE ' + b'(' * 30000 +
                        b')' * 30000 + b')\r\n')
            self.note('sent a BODYSTRUCTURE 30000 levels deep')
        if b.name == 'INBOX' and self.sc == 'long-line':
            return self.flood(b'* OK ', b'x')
        if b.name == 'INBOX' and self.sc == 'permflags':
            self.c.send(b'* OK [PERMANENTFLAGS (%Seen \\*)] Flags permitted.\r\n')
            self.note('sent a malformed PERMANENTFLAGS list')
        self.ok(tag, '[READ-WRITE] SELECT completed')

    cmd_examine = cmd_select

    def cmd_uid_search(self, tag, rest):
        if self.sel is None:
            self.c.send(('%s BAD no mailbox selected\r\n' % tag).encode())
            return
        uids = ' '.join(str(m[0]) for m in self.sel.msgs)
        self.c.send(('* SEARCH %s\r\n' % uids).encode().replace(b' \r\n', b'\r\n'))
        self.ok(tag, 'SEARCH completed')

    def fetch_items(self, seq, uid, flags, body, items, size=None):
        """One FETCH response as bytes (literal included)."""
        parts = [b'UID %d' % uid]
        if 'FLAGS' in items:
            parts.append(b'FLAGS (' + flags.encode() + b')')
        if 'RFC822.SIZE' in items:
            parts.append(b'RFC822.SIZE %d' % (size if size is not None
                                               else len(body or b'')))
        if 'INTERNALDATE' in items:
            parts.append(b'INTERNALDATE "01-Jan-2024 10:00:00 +0000"')
        if 'BODY.PEEK[]' in items and body is None:
            parts.append(b'BODY[] NIL')
        elif 'BODY.PEEK[]' in items:
            parts.append(b'BODY[] {%d}\r\n' % len(body) + body)
        m = re.search(r'BODY\.PEEK\[HEADER\.FIELDS \(([^)]*)\)\]', items)
        if m:
            want = m.group(1).upper().split()
            hdr = b''
            for hl in body.split(b'\r\n\r\n', 1)[0].split(b'\r\n'):
                if hl.split(b':', 1)[0].decode().upper() in want:
                    hdr += hl + b'\r\n'
            hdr += b'\r\n'
            parts.append(b'BODY[HEADER.FIELDS (' + m.group(1).encode() +
                         b')] {%d}\r\n' % len(hdr) + hdr)
        return b'* %d FETCH (' % seq + b' '.join(parts) + b')\r\n'

    def cmd_uid_fetch(self, tag, rest):
        c = self.c
        if self.sel is None:
            c.send(('%s BAD no mailbox selected\r\n' % tag).encode())
            return
        spec, _, items = rest.partition(' ')
        items = items.upper()
        uids = [m[0] for m in self.sel.msgs]
        want = parse_set(spec, uids)
        full = 'BODY.PEEK[]' in items
        sc = self.sc if full else 'normal'
        inbox = self.sel.name == 'INBOX'
        if sc == 'flood-fetch':
            return self.flood(b'', b'* OK flood\r\n')
        if sc == 'literal-huge':
            return self.flood(b'* 1 FETCH (UID 1 BODY[] {999999999999}\r\n',
                              b'X' * 77 + b'\r\n')
        if sc == 'literal-wrap' and inbox:
            c.send(b'* 1 FETCH (UID 1 RFC822.SIZE 4294967297 BODY[] '
                   b'{4294967297}\r\nX)\r\n')
            self.note('sent a literal of 2^32 + 1 bytes with 1 byte')
            want.discard(1)
        first = True
        for seq, (uid, flags, body) in enumerate(self.sel.msgs, 1):
            if uid not in want:
                continue
            if first and sc in ('huge', 'huge-close'):
                announced = 300 << 20
                sent = {'huge': 64 << 10, 'huge-close': 1 << 20}[sc]
                c.send(b'* %d FETCH (UID %d RFC822.SIZE %d BODY[] {%d}\r\n'
                       % (seq, uid, announced, announced))
                chunk = (b'X' * 77 + b'\r\n') * (sent // 79 + 1)
                c.send(chunk[:sent])
                self.note('announced %d, sent %d' % (announced, sent))
                if sc == 'huge':
                    while c.s.recv(65536):
                        pass  # stall until the client gives up
                return False
            size = None
            if inbox and sc == 'body-nil' and uid == 2:
                body, size = None, len(body)
            elif inbox and sc == 'size-lie' and uid == 2:
                size = 99999
            elif inbox and sc == 'size-lie' and uid == 3:
                body, size = b'', len(body)
            c.send(self.fetch_items(seq, uid, flags, body, items, size=size))
            first = False
        self.ok(tag, 'FETCH completed')


SCENARIOS = ('normal', 'huge', 'huge-close', 'evil-names', 'deep-nesting',
             'long-line',
             'literal-wrap', 'literal-huge', 'flood-fetch', 'flood-idle',
             'idle-split', 'uidnext-back', 'bad-utf8-name', 'body-nil',
             'size-lie', 'control-names', 'permflags')


def main():
    p = parser(__doc__, '--scenario', SCENARIOS)
    p.add_argument('--first-only', action='store_true')
    serve(p.parse_args(), lambda sock, n, args: Session(sock, n, args).run(),
          log_errors=(OSError, ValueError, IndexError))


if __name__ == '__main__':
    main()
