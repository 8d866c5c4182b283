#!/usr/bin/python3
"""deliver.py -- LMTP delivery of message files into a test Dovecot.

usage: deliver.py --port N --rcpt USER [--host 127.0.0.1] [--folder F]
                  [--from ADDR] [--raw] [--progress] FILE_OR_DIR...

* Directories are walked recursively (sorted; hidden files skipped).
* A file whose first line starts with "From " is an mbox: it is split at
  "From " lines that start the file or follow an empty line; the From_ line
  is dropped and ">From " / ">>From " lines are unescaped by one ">"
  (mboxrd rule; also right for mboxo's single level).
* Line endings are normalised to CRLF (bare LF -> CRLF) unless --raw.
  (Dovecot stores LF in Maildir and serves CRLF, so this changes nothing a
  client sees except for bare CR or mixed files.)
* --folder F: RCPT TO <local+F@domain>: Dovecot's lmtp_save_to_detail_mailbox
  puts the message into F (autocreated). F must match [A-Za-z0-9._/-]+.
* One LMTP session, one transaction per message. A rejected message is
  reported on stderr with the server reply (file name and mbox index) and
  the batch continues. Prints the number of accepted messages on stdout.
  Exit status 0 if at least one was accepted or nothing was given, 1 if all
  were rejected, 3 on connection failure.
* --maildir DIR: no LMTP at all -- write each message as a file into the
  Maildir folder DIR/cur (name <n>.M<n>P<pid>.mxbulk:2, in input order, LF
  line endings, no Return-Path/Delivered-To/Received added). Dovecot assigns
  UIDs in that order at its next sync. This is what dc_bulk_load uses: LMTP
  into Maildir gets slower as the folder grows (the lmtp process re-reads the
  folder's uidlist/index per delivery: ~250 msg/s at 5k, ~150 msg/s at 15k).
"""
import argparse, os, re, smtplib, sys, time

def iter_paths(args):
    for a in args:
        if os.path.isdir(a):
            for root, dirs, files in os.walk(a):
                dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
                for f in sorted(files):
                    if not f.startswith('.'):
                        yield os.path.join(root, f)
        else:
            yield a

FROM_ESC = re.compile(rb'^>(>*From )', re.M)

def split_mbox(data):
    """yields message bytes of an mbox (data starts with b'From ')."""
    lines = data.splitlines(keepends=True)
    cur = None
    prev_blank = True
    for ln in lines:
        if ln.startswith(b'From ') and prev_blank:
            if cur is not None:
                yield finish(cur)
            cur = []
            prev_blank = False
            continue
        cur.append(ln)
        prev_blank = ln in (b'\n', b'\r\n')
    if cur is not None:
        yield finish(cur)

def finish(lines):
    # the empty line before the next From_ line belongs to the mbox format
    if lines and lines[-1] in (b'\n', b'\r\n'):
        lines = lines[:-1]
    return FROM_ESC.sub(rb'\1', b''.join(lines))

def messages(paths):
    """yields (label, bytes)."""
    for p in iter_paths(paths):
        try:
            data = open(p, 'rb').read()
        except OSError as e:
            print('deliver: %s: %s' % (p, e), file=sys.stderr)
            continue
        if data.startswith(b'From '):
            for i, m in enumerate(split_mbox(data), 1):
                yield ('%s#%d' % (p, i), m)
        else:
            yield (p, data)

class Session:
    def __init__(self, a):
        self.a = a
        self.connect()

    def connect(self):
        self.l = smtplib.LMTP(self.a.host, self.a.port, timeout=self.a.timeout)
        self.l.ehlo_or_helo_if_needed()

    def send(self, rcpt, msg):
        """returns None on success, else the server reply text."""
        for attempt in (1, 2):
            try:
                refused = self.l.sendmail(self.a.mail_from, [rcpt], msg)
                if refused:
                    return repr(refused)
                return None
            except smtplib.SMTPServerDisconnected:
                if attempt == 2:
                    raise
                self.connect()
            except smtplib.SMTPResponseException as e:
                try:
                    self.l.rset()
                except smtplib.SMTPException:
                    self.connect()
                return '%d %s' % (e.smtp_code, e.smtp_error.decode(errors='replace'))
            except smtplib.SMTPRecipientsRefused as e:
                self.l.rset()
                return repr(e.recipients)

def to_maildir(a):
    cur = os.path.join(a.maildir, 'cur')
    os.makedirs(cur, exist_ok=True)
    base = 1000000000 + int(time.time()) % 1000000   # sorts after nothing in particular
    ok = 0
    t0 = time.monotonic(); last = t0
    pid = os.getpid()
    for label, msg in messages(a.paths):
        ok += 1
        name = '%d.M%06dP%dQ%d.mxbulk:2,' % (base + ok // 1000000, ok % 1000000, pid, ok)
        msg = msg.replace(b'\r\n', b'\n')
        with open(os.path.join(cur, name), 'wb') as f:
            f.write(msg)
        if a.progress and time.monotonic() - last >= 1:
            last = time.monotonic()
            print('deliver: %d written, %.0f msg/s' % (ok, ok / (last - t0)), file=sys.stderr)
    if a.progress:
        dt = time.monotonic() - t0
        print('deliver: done: %d written in %.2fs (%.0f msg/s)' % (ok, dt, ok / dt if dt else 0),
              file=sys.stderr)
    print(ok)
    return 0

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(__doc__.split('\n')[1:]))
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--rcpt', required=True)
    p.add_argument('--folder')
    p.add_argument('--from', dest='mail_from', default='sender@example.test')
    p.add_argument('--raw', action='store_true')
    p.add_argument('--progress', action='store_true')
    p.add_argument('--timeout', type=float, default=60)
    p.add_argument('--maildir')
    p.add_argument('paths', nargs='+')
    a = p.parse_args()
    if a.maildir:
        return to_maildir(a)
    rcpt = a.rcpt
    if a.folder:
        if not re.match(r'^[A-Za-z0-9._/-]+$', a.folder):
            p.error('--folder %r: use imaptool append for such names' % a.folder)
        local, _, dom = rcpt.partition('@')
        rcpt = '%s+%s@%s' % (local, a.folder, dom)
    try:
        s = Session(a)
    except OSError as e:
        print('deliver: cannot connect to LMTP %s:%d: %s' % (a.host, a.port, e), file=sys.stderr)
        return 3
    ok = bad = 0
    t0 = time.monotonic(); last = t0
    for label, msg in messages(a.paths):
        if not a.raw:
            msg = re.sub(rb'(?<!\r)\n', b'\r\n', msg)
        try:
            err = s.send(rcpt, msg)
        except (OSError, smtplib.SMTPException) as e:
            err = 'connection: %s' % e
            try:
                s.connect()
            except OSError as e2:
                print('deliver: reconnect failed: %s' % e2, file=sys.stderr)
                return 3
        if err is None:
            ok += 1
        else:
            bad += 1
            print('deliver: REJECTED %s: %s' % (label, err), file=sys.stderr)
        if a.progress and time.monotonic() - last >= 1:
            last = time.monotonic()
            print('deliver: %d delivered, %d rejected, %.0f msg/s' %
                  (ok, bad, ok / (last - t0)), file=sys.stderr)
    try:
        s.l.quit()
    except (OSError, smtplib.SMTPException):
        pass
    if a.progress:
        dt = time.monotonic() - t0
        print('deliver: done: %d delivered, %d rejected in %.2fs (%.0f msg/s)' %
              (ok, bad, dt, ok / dt if dt else 0), file=sys.stderr)
    print(ok)
    return 0 if ok or not bad else 1

if __name__ == '__main__':
    sys.exit(main())
