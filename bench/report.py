#!/usr/bin/python3
"""report.py -- prints the table of bench/sync-vs-mbsync.

usage: report.py RESULTS KEY=VALUE...

RESULTS lines (written by sync-vs-mbsync through measure.py):
    TRANSPORT RUN rc wall_s user_s sys_s maxrss_kb server_cpu_s anon_kb file_kb bg_cpu_s
    TRANSPORT mx_disk_kb|mb_disk_kb KB
"""
import statistics
import sys

LABELS = [
    ('raw', 'raw FETCH-and-discard'),
    ('raw_select', 'raw LOGIN+SELECT only *'),
    ('mx_initial', 'mxsync initial sync'),
    ('mx_nochange', 'mxsync no-change resync *'),
    ('mx_new', 'mxsync resync +%(new)s new'),
    ('mb_initial', 'mbsync initial sync'),
    ('mb_nochange', 'mbsync no-change resync *'),
    ('mb_new', 'mbsync resync +%(new)s new'),
]


def main():
    res = sys.argv[1]
    kv = dict(a.split('=', 1) for a in sys.argv[2:])
    n = int(kv['N'])
    nbytes = int(kv.get('bytes') or 0)
    new = int(kv.get('new') or 0)
    new_bytes = int(kv.get('new_bytes') or 0)
    runs = {}
    extra = {}
    order = []
    with open(res) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                extra[(p[0], p[1])] = int(p[2])
                continue
            if len(p) != 11:
                continue
            t, what = p[0], p[1]
            r = dict(rc=int(p[2]), wall=float(p[3]), user=float(p[4]),
                     sys=float(p[5]), rss=int(p[6]), srv=float(p[7]),
                     anon=int(p[8]), file=int(p[9]), bg=float(p[10]))
            if t not in order:
                order.append(t)
            runs.setdefault((t, what), []).append(r)

    def pick(t, what, ok_only=False):
        v = runs.get((t, what))
        if v and ok_only:
            v = [r for r in v if r['rc'] == 0]
        if not v:
            return None
        if len(v) == 1:
            return v[0]
        s = sorted(v, key=lambda r: r['wall'])
        return s[len(s) // 2]  # median by wall time

    print()
    print('mxsync vs mbsync vs raw FETCH-and-discard  (bench/sync-vs-mbsync %d)'
          % n)
    print('date:     %s' % kv.get('date', '?'))
    print('mailbox:  INBOX, %d messages, %.1f MB on the wire (sum of RFC822.SIZE),'
          ' bench/gen-mail.py seed %s' % (n, nbytes / 1e6, kv.get('seed')))
    print('host:     %s, Linux %s, loopback' % (kv.get('host'), kv.get('kernel')))
    print('software: Dovecot %s, %s, libetpan %s' % (
        kv.get('dovecot'), kv.get('mbsync'), kv.get('libetpan')))
    print('          %s' % kv.get('mxsync'))
    print('load:     %s' % kv.get('load'))
    print('new mail: %s messages added by %s between the runs' % (
        kv.get('new'), kv.get('new_via')))
    print()
    hdr = ('%-6s %-28s %9s %7s %7s %7s %9s %9s %8s %7s %6s'
           % ('', 'run', 'wall', 'user s', 'sys s', 'srv s',
              'peak RSS', 'anon RSS', 'msgs/s', 'MB/s', 'bg s'))
    print(hdr)
    print('-' * len(hdr))
    for t in order:
        for key, label in LABELS:
            r = pick(t, key)
            if r is None:
                continue
            label = label % {'new': new}
            if key in ('raw', 'mx_initial', 'mb_initial'):
                msgs, b = n, nbytes
            elif key in ('mx_new', 'mb_new'):
                msgs, b = new, new_bytes
            else:
                msgs, b = 0, 0
            wall = r['wall']
            if wall < 1:
                ws = '%.0f ms' % (wall * 1000)
            else:
                ws = '%.2f s' % wall
            rate = ('%8.0f %7.1f' % (msgs / wall, b / 1e6 / wall)
                    if msgs and wall > 0 else '%8s %7s' % ('-', '-'))
            fail = '' if r['rc'] == 0 else '  FAILED rc=%d' % r['rc']
            print('%-6s %-28s %9s %7.2f %7.2f %7.2f %6.1f MB %6.1f MB %s %6.1f%s'
                  % (t, label, ws, r['user'], r['sys'], r['srv'],
                     r['rss'] / 1024, r['anon'] / 1024, rate, r['bg'], fail))
        print()
    print('* median of %d runs (mbsync\'s first resync right after the initial'
          ' one sleeps 1 s: "Maildir notice: sleeping due to recent directory'
          ' modification"); all runs (wall ms):' % max(
        [len(v) for (t, k), v in runs.items() if k.endswith('nochange')] or [0]))
    for t in order:
        for key, name in (('raw_select', 'raw SELECT'),
                          ('mx_nochange', 'mxsync'),
                          ('mb_nochange', 'mbsync')):
            v = runs.get((t, key))
            if v:
                print('    %-6s %-12s %s' % (t, name, ', '.join(
                    '%.1f' % (r['wall'] * 1000) for r in v)))
    print('user s, sys s = the client\'s CPU; srv s = Dovecot\'s CPU (imap + '
          'imap-login TLS proxy) meanwhile')
    print('bg s = all other CPU on the machine meanwhile (kernel writeback, '
          'unrelated processes): large = noisy run')
    print('peak RSS = kernel maxrss (anon + file-backed pages, e.g. mapped '
          'LMDB pages); anon RSS = peak RssAnon (heap), sampled every 5 ms')
    print()
    print('Ratios')
    for t in order:
        def ok(k):
            return pick(t, k, ok_only=True)
        raw, mxi, mbi = ok('raw'), ok('mx_initial'), ok('mb_initial')
        mxn, mbn = ok('mx_nochange'), ok('mb_nochange')
        mxw, mbw = ok('mx_new'), ok('mb_new')
        print('  %s:' % t)
        if mxi and mbi:
            x = mbi['wall'] / mxi['wall']
            print('    initial sync, mxsync vs mbsync:   %.2fx %s  (%.2f s vs %.2f s;'
                  ' target: faster)' % (x if x >= 1 else 1 / x,
                                        'faster' if x >= 1 else 'SLOWER',
                                        mxi['wall'], mbi['wall']))
        if mxi and raw:
            print('    initial sync, mxsync / raw client: %.2fx  (%.2f s vs %.2f s;'
                  ' target: <= 2x)' % (mxi['wall'] / raw['wall'], mxi['wall'],
                                       raw['wall']))
            print('    client CPU (user+sys): mxsync %.2f s, raw %.2f s, mbsync %s'
                  % (mxi['user'] + mxi['sys'], raw['user'] + raw['sys'],
                     '%.2f s' % (mbi['user'] + mbi['sys']) if mbi else '-'))
        rs = ok('raw_select')
        if mxn:
            print('    no-change resync:  mxsync %.1f ms, mbsync %s, floor (raw'
                  ' LOGIN+SELECT) %s  (target < 50 ms)'
                  % (mxn['wall'] * 1000,
                     '%.1f ms' % (mbn['wall'] * 1000) if mbn else '-',
                     '%.1f ms' % (rs['wall'] * 1000) if rs else '-'))
        if mxw:
            print('    +%d new messages:   mxsync %.1f ms, mbsync %s'
                  % (new, mxw['wall'] * 1000,
                     '%.1f ms' % (mbw['wall'] * 1000) if mbw else '-'))
        if mxi:
            print('    peak RSS, initial: mxsync %.1f MB (anon %.1f MB), mbsync %s,'
                  ' raw %s' % (mxi['rss'] / 1024, mxi['anon'] / 1024,
                               '%.1f MB' % (mbi['rss'] / 1024) if mbi else '-',
                               '%.1f MB' % (raw['rss'] / 1024) if raw else '-'))
        dm, db = extra.get((t, 'mx_disk_kb')), extra.get((t, 'mb_disk_kb'))
        if dm:
            print('    on disk after initial sync: mxsync data dir %.1f MB,'
                  ' mbsync Maildir %s' % (dm / 1024, '%.1f MB' % (db / 1024)
                                          if db else '-'))
    q = [k for k in runs if k[1].startswith('mx_initial_q')]
    if q:
        t, k = q[0]
        r = pick(t, k)
        full = pick('TLS', 'mx_initial')
        qn = int(k[len('mx_initial_q'):])
        print()
        print('RSS scan (mxsync initial sync over TLS, fresh data dir):')
        for k, x in ((qn, r), (n, full)):
            if x:
                print('    %6d messages: peak RSS %6.1f MB = anon %6.1f MB + '
                      'file-backed (LMDB map) %6.1f MB  (%.2f s)' % (
                          k, x['rss'] / 1024, x['anon'] / 1024,
                          x['file'] / 1024, x['wall']))
    print()


if __name__ == '__main__':
    main()
