#!/usr/bin/python3
"""daemon_check.py -- waits and checks for tests/integ/t-daemon.sh (mxsyncd).

Every subcommand that waits polls (short sleeps, bounded by --timeout) and
exits 1 on timeout after printing what it saw last.  MX is the mxsync CLI,
DIR the data directory.

  wait-state  --mx MX --dir DIR --account NAME --state S[,S...] [--timeout T]
      until `status --json` shows daemon.state in the list; prints
      "<elapsed_ms> <daemon object as JSON>".
  wait-event  --mx MX --dir DIR --after ID --type TYPE [--account N]
              [--field K=V]... [--t0-ms MS] [--timeout T] [--interval S]
      until an event of TYPE (and account N, and fields) with id > ID is in
      the feed; prints "<ms since t0 (or since start)> <event JSON>".
  wait-hook   --log RXLOG --event-id ID [--t0-ms MS] [--timeout T]
      until the receiver answered 2xx to event ID; prints "<t_rx - t0 ms>".
  sig         --log RXLOG --event-id ID --secret S
      recomputes X-Mxsync-Signature for the 2xx request of event ID
      (HMAC-SHA256(secret, "<t>.<body>"), hmac.compare_digest), checks
      X-Mxsync-Event-Id and the body's id; prints "ok" or the problem.
  hook-order  --log RXLOG --feed FEED [--from ID]
      FEED: `events --json` output.  Checks that the receiver acknowledged
      (2xx) every feed event with id >= FROM (default 1), that the first
      acknowledgements come in increasing id order, and that no request
      for an event came before the previous event was acknowledged.
      Prints "ok acked=N dup=N non2xx=N" or the first problem.
  exactly-once --mx MX --dir DIR --feed FEED --account N --msgids FILE
      every Message-ID in FILE (one a line, with or without <>) has exactly
      one message.new event of account N in FEED (resolved with
      `show ID --json`), and no message record has two message.new events.
      Prints "ok N" or the missing / duplicated ones.
  sessions    --log DOVECOTLOG --user U [--from-line N]
      IMAP sessions of U in Dovecot's log: "<logins> <open sessions>" where
      open sessions are the session ids logged in and not disconnected.
  auth-fails  --log DOVECOTLOG --user U
      number of failed authentication attempts of U (sum of "N attempts").
"""
import argparse, base64, hashlib, hmac, json, re, subprocess, sys, time


def now_ms():
    return time.time() * 1000.0


def run_json_lines(mx, d, args):
    p = subprocess.run([mx, '-d', d] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        return None
    return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


def status(mx, d):
    p = subprocess.run([mx, '-d', d, 'status', '--json'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except ValueError:
        return None


def cmd_wait_state(a):
    want = a.state.split(',')
    t0 = now_ms()
    last = None
    while True:
        st = status(a.mx, a.dir)
        for acct in st or []:
            if acct.get('account') == a.account:
                last = acct.get('daemon') or {}
        if last is not None and last.get('state') in want:
            print('%d %s' % (now_ms() - t0, json.dumps(last)))
            return 0
        if now_ms() - t0 > a.timeout * 1000:
            print('timeout after %ds; last: %s' % (a.timeout, json.dumps(last)))
            return 1
        time.sleep(0.1)


def match(ev, a):
    if ev.get('type') != a.type:
        return False
    if a.account is not None and ev.get('account') != a.account:
        return False
    for kv in a.field:
        k, _, v = kv.partition('=')
        if str(ev.get(k)) != v:
            return False
    return True


def cmd_wait_event(a):
    t0 = a.t0_ms if a.t0_ms else now_ms()
    start = now_ms()
    after = a.after
    seen = []
    while True:
        evs = run_json_lines(a.mx, a.dir, ['events', '--json', '--after',
                                           str(after)])
        t = now_ms()
        for ev in evs or []:
            after = max(after, ev['id'])
            seen.append(ev)
            if match(ev, a):
                print('%d %s' % (t - t0, json.dumps(ev)))
                return 0
        if t - start > a.timeout * 1000:
            print('timeout after %ds; events seen: %s' %
                  (a.timeout, ' '.join('%d:%s' % (e['id'], e['type'])
                                       for e in seen[-10:]) or 'none'))
            return 1
        time.sleep(a.interval)


def records(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line being written
    except OSError:
        pass
    return out


def is2xx(r):
    return r.get('status') is not None and 200 <= r['status'] < 300


def cmd_wait_hook(a):
    start = now_ms()
    while True:
        for r in records(a.log):
            if r.get('event_id') == a.event_id and is2xx(r):
                t0 = a.t0_ms if a.t0_ms else start
                print('%d' % (r['t'] * 1000.0 - t0))
                return 0
        if now_ms() - start > a.timeout * 1000:
            print('timeout: no 2xx for event %d in %s' % (a.event_id, a.log))
            return 1
        time.sleep(0.02)


def cmd_sig(a):
    for r in records(a.log):
        if r.get('event_id') != a.event_id or not is2xx(r):
            continue
        h = r['headers']
        body = base64.b64decode(r['body_b64'])
        sig = h.get('x-mxsync-signature', '')
        m = re.fullmatch(r't=(\d+),v1=([0-9a-f]{64})', sig)
        if not m:
            print('malformed X-Mxsync-Signature %r' % sig)
            return 1
        want = hmac.new(a.secret.encode(), m.group(1).encode() + b'.' + body,
                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, m.group(2)):
            print('signature mismatch: got %s want %s' % (m.group(2), want))
            return 1
        if abs(int(m.group(1)) - r['t']) > 60:
            print('signature time %s far from receive time %.0f' %
                  (m.group(1), r['t']))
            return 1
        ev = json.loads(body)
        if ev.get('id') != a.event_id or \
           h.get('x-mxsync-event-id') != str(a.event_id):
            print('event id mismatch: body %r header %r' %
                  (ev.get('id'), h.get('x-mxsync-event-id')))
            return 1
        if h.get('content-type') != 'application/json':
            print('Content-Type %r' % h.get('content-type'))
            return 1
        print('ok')
        return 0
    print('no 2xx request for event %d' % a.event_id)
    return 1


def cmd_hook_order(a):
    feed = [json.loads(l) for l in open(a.feed) if l.strip()]
    want = [e['id'] for e in feed if e['id'] >= a.__dict__['from']]
    recs = sorted(records(a.log), key=lambda r: r['n'])
    acked, dup, non2xx = [], 0, 0
    done = set()
    for r in recs:
        eid = r.get('event_id')
        if not is2xx(r):
            non2xx += 1
        # a request for an event beyond the next undelivered one means the
        # sender skipped ahead (order broken), whatever the answer was
        pending = [i for i in want if i not in done]
        if eid not in done and pending and eid != pending[0] and \
           eid in want:
            print('request %d is for event %s while event %d was not '
                  'acknowledged yet' % (r['n'], eid, pending[0]))
            return 1
        if is2xx(r):
            if eid in done:
                dup += 1
            else:
                done.add(eid)
                acked.append(eid)
    missing = [i for i in want if i not in done]
    if missing:
        print('missing %d of %d events: %s' %
              (len(missing), len(want), ' '.join(map(str, missing[:20]))))
        return 1
    extra = [i for i in acked if i not in set(want)]
    if acked != sorted(acked):
        print('acknowledged out of order: %s' % ' '.join(map(str, acked[:40])))
        return 1
    print('ok acked=%d dup=%d non2xx=%d extra=%d' %
          (len(acked), dup, non2xx, len(extra)))
    return 0


def cmd_exactly_once(a):
    want = [l.strip().strip('<>') for l in open(a.msgids) if l.strip()]
    feed = [json.loads(l) for l in open(a.feed) if l.strip()]
    news = [e for e in feed
            if e['type'] == 'message.new' and e.get('account') == a.account]
    per_record = {}
    for e in news:
        per_record.setdefault(e['message'], []).append(e['id'])
    by_msgid = {}
    for rec, evids in per_record.items():
        p = subprocess.run([a.mx, '-d', a.dir, 'show', rec, '--json'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            # expunged since (scenario 1 deletes one): not ours to count
            continue
        mid = json.loads(p.stdout).get('message_id') or ''
        by_msgid.setdefault(mid.strip('<>'), []).extend(
            (rec, i) for i in evids)
    problems = []
    for mid in want:
        got = by_msgid.get(mid, [])
        if len(got) != 1:
            problems.append('%s: %d message.new (%s)' %
                            (mid, len(got), ' '.join('%s@%d' % g for g in got)))
    dups = ['%s has %d message.new events (%s)' %
            (rec, len(ids), ' '.join(map(str, ids)))
            for rec, ids in per_record.items() if len(ids) > 1]
    if len(set(want)) != len(want):
        problems.append('the delivered list itself has duplicate Message-IDs')
    if problems or dups:
        for p in (problems + dups)[:20]:
            print(p)
        print('%d problems, %d duplicated records' % (len(problems), len(dups)))
        return 1
    print('ok %d' % len(want))
    return 0


def dovecot_lines(path, start=0):
    with open(path, errors='replace') as f:
        return f.read().splitlines()[start:]


def cmd_sessions(a):
    logins, disc = [], set()
    user = re.escape(a.user)
    for line in dovecot_lines(a.log, a.from_line):
        m = re.search(r'imap-login: .*Login: user=<%s>.*session=<([^>]+)>'
                      % user, line)
        if m:
            logins.append(m.group(1))
        m = re.search(r'imap\(%s\)<\d+><([^>]+)>: .*Disconnected' % user, line)
        if m:
            disc.add(m.group(1))
    opened = [s for s in logins if s not in disc]
    print('%d %s' % (len(logins), ' '.join(opened)))
    return 0


def cmd_auth_fails(a):
    n = 0
    for line in dovecot_lines(a.log):
        if 'user=<%s>' % a.user not in line:
            continue
        m = re.search(r'auth failed, (\d+) attempts', line)
        if m:
            n += int(m.group(1))
    print(n)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('wait-state')
    p.add_argument('--mx', required=True)
    p.add_argument('--dir', required=True)
    p.add_argument('--account', required=True)
    p.add_argument('--state', required=True)
    p.add_argument('--timeout', type=float, default=20)
    p = sub.add_parser('wait-event')
    p.add_argument('--mx', required=True)
    p.add_argument('--dir', required=True)
    p.add_argument('--after', type=int, default=0)
    p.add_argument('--type', required=True)
    p.add_argument('--account', type=int)
    p.add_argument('--field', action='append', default=[])
    p.add_argument('--t0-ms', type=float)
    p.add_argument('--timeout', type=float, default=20)
    p.add_argument('--interval', type=float, default=0.02)
    p = sub.add_parser('wait-hook')
    p.add_argument('--log', required=True)
    p.add_argument('--event-id', type=int, required=True)
    p.add_argument('--t0-ms', type=float)
    p.add_argument('--timeout', type=float, default=20)
    p = sub.add_parser('sig')
    p.add_argument('--log', required=True)
    p.add_argument('--event-id', type=int, required=True)
    p.add_argument('--secret', required=True)
    p = sub.add_parser('hook-order')
    p.add_argument('--log', required=True)
    p.add_argument('--feed', required=True)
    p.add_argument('--from', type=int, default=1)
    p = sub.add_parser('exactly-once')
    p.add_argument('--mx', required=True)
    p.add_argument('--dir', required=True)
    p.add_argument('--feed', required=True)
    p.add_argument('--account', type=int, required=True)
    p.add_argument('--msgids', required=True)
    p = sub.add_parser('sessions')
    p.add_argument('--log', required=True)
    p.add_argument('--user', required=True)
    p.add_argument('--from-line', type=int, default=0)
    p = sub.add_parser('auth-fails')
    p.add_argument('--log', required=True)
    p.add_argument('--user', required=True)
    a = ap.parse_args()
    return {'wait-state': cmd_wait_state, 'wait-event': cmd_wait_event,
            'wait-hook': cmd_wait_hook, 'sig': cmd_sig,
            'hook-order': cmd_hook_order, 'exactly-once': cmd_exactly_once,
            'sessions': cmd_sessions, 'auth-fails': cmd_auth_fails}[a.cmd](a)


if __name__ == '__main__':
    sys.exit(main())
