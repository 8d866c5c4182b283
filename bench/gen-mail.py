#!/usr/bin/python3
"""gen-mail.py -- deterministic, realistic RFC 5322 test messages.

usage: gen-mail.py [--seed S] [--jobs J] [--mbox FILE] N [OUT]

Writes N messages as OUT/000001.eml ... (CRLF line endings), or with
--mbox FILE a single mboxrd file (LF line endings, ">From " escaped) and
OUT may be omitted. Same N and seed -> same bytes (also for any --jobs).
Messages are numbered in date order.

Content: display names (some RFC 2047: UTF-8, ISO-8859-1, ISO-2022-JP,
KOI8-R, Big5, B and Q encoding), To/Cc, threads (~30% of messages are in
threads of 2-8, with In-Reply-To/References and "Re:" subjects), text/plain
or multipart/alternative (text+html), ~15% multipart/mixed with 1-2
PDF/PNG/ZIP-like attachments of 10 KB-2 MB (some RFC 2231 filenames),
7bit / quoted-printable / base64 bodies, dates over 2023-01-01..2024-12-31,
unique Message-IDs. Mean size ~30 KB (50,000 messages ~ 1.5 GB).
"""
import argparse, base64, binascii, math, multiprocessing, os, random, sys, time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

# ------------------------------------------------------------------ data
PEOPLE_SRC = [
    # (display name, charset, email local part, domain)
    ('Alice Johnson', None, 'alice.johnson', 'example.com'),
    ('Bob Smith', None, 'bob.smith', 'example.com'),
    ('Carol Williams', None, 'carol', 'example.org'),
    ('David Brown', None, 'dbrown', 'example.net'),
    ('Smith, Eve', None, 'eve.smith', 'example.org'),
    ('Frank O\'Neil', None, 'frank.oneil', 'example.ie'),
    ('Grace Lee', None, 'grace', 'lists.example.net'),
    ('Henry Davis', None, 'henry.davis', 'example.com'),
    ('Isabel Clark', None, 'iclark', 'example.co.uk'),
    ('Jack Taylor', None, 'jack', 'example.net'),
    ('Karen Moore', None, 'karen.moore', 'example.com'),
    ('Liam Walker', None, 'liam', 'example.org'),
    ('Mia Hall', None, 'mia.hall', 'example.net'),
    ('Noah Allen (Ops)', None, 'ops-noah', 'example.com'),
    ('Olivia Young', None, 'oyoung', 'example.com'),
    ('Paul Wright', None, 'paul.wright', 'example.org'),
    ('José García', 'utf-8', 'jose.garcia', 'example.es'),
    ('Zoë Müller', 'utf-8', 'zoe.mueller', 'example.de'),
    ('Søren Kierkegård', 'utf-8', 'soren', 'example.dk'),
    ('Ελένη Παπαδοπούλου', 'utf-8', 'eleni.p', 'example.gr'),
    ('Łukasz Żółć', 'utf-8', 'lukasz', 'example.pl'),
    ('François Dupré', 'iso-8859-1', 'francois.dupre', 'example.fr'),
    ('Jürgen Weiß', 'iso-8859-1', 'juergen.weiss', 'example.de'),
    ('Inés Núñez', 'iso-8859-1', 'ines.nunez', 'example.es'),
    ('Åsa Ångström', 'iso-8859-1', 'asa', 'example.se'),
    ('山田 太郎', 'iso-2022-jp', 'yamada.taro', 'example.jp'),
    ('佐藤 花子', 'iso-2022-jp', 'sato.hanako', 'example.jp'),
    ('鈴木 一郎', 'iso-2022-jp', 'suzuki', 'example.jp'),
    ('Иван Петров', 'koi8-r', 'ivan.petrov', 'example.ru'),
    ('Мария Смирнова', 'koi8-r', 'maria.s', 'example.ru'),
    ('Дмитрий Козлов', 'koi8-r', 'dkozlov', 'example.ru'),
    ('陳大文', 'big5', 'chan.taiman', 'example.tw'),
    ('林美玲', 'big5', 'lin.meiling', 'example.tw'),
    ('王小明', 'big5', 'wang.xm', 'example.tw'),
    (None, None, 'noreply', 'notifications.example.com'),
    (None, None, 'billing', 'example.net'),
]

TOPICS = [
    'Quarterly report draft', 'Meeting notes from Tuesday', 'Build failure on main',
    'Lunch on Friday?', 'Invoice #{n}', 'Your order has shipped', 'Re-org announcement',
    'Question about the API', 'Travel plans for the conference', 'Server maintenance window',
    'Budget review {y}', 'Release {n}.{m} checklist', 'Welcome to the team!',
    'Updated slides', 'Contract renewal', 'Password reset requested', 'Weekly digest',
    'Photos from the offsite', 'Bug #{n}: crash on startup', 'Holiday schedule',
]
TOPICS_INTL = [
    ('Über die Besprechung nächste Woche', 'utf-8'),
    ('Réunion de lundi : ordre du jour', 'iso-8859-1'),
    ('会議の議事録について', 'iso-2022-jp'),
    ('Отчёт за квартал', 'koi8-r'),
    ('季度報告', 'big5'),
    ('Ça va? Café à 15h ☕', 'utf-8'),
]

WORDS = ('the of and to in is that for it as with was on be by this are from at or an '
         'have not which but all were when we there can been has more if will one would '
         'about their what so out up into some could them other than then now only its '
         'also two over after first new these may any our most where much should well '
         'project meeting report server release budget customer schedule draft review '
         'team update deadline feature test build deploy database backup network '
         'invoice contract proposal agenda quarter figures estimate issue ticket patch '
         'please thanks attached below above tomorrow today next week monday friday '
         'morning afternoon office remote call discuss confirm question answer change '
         'version document spreadsheet presentation slides numbers approval feedback').split()
INTL_SENTENCES = [
    'Grüße aus München, wir sehen uns übermorgen.',
    'Merci beaucoup pour votre réponse très rapide.',
    'Съешь же ещё этих мягких французских булок.',
    'お疲れ様です。資料を添付いたします。',
    '謝謝你的幫助，我們下週見。',
    'Αύριο θα στείλω το έγγραφο.',
    'Zażółć gęślą jaźń.',
    'Smörgåsbord på fredag? 🙂',
]

BASE = datetime(2023, 1, 1, tzinfo=timezone.utc)
SPAN = 2 * 365 * 86400
TZS = [0, 60, 120, -300, -240, -420, 330, 540, 480, 180, 600, -180]

# ------------------------------------------------------------------ encoders
def q_encode(b):
    out = []
    for c in b:
        ch = chr(c)
        if ch == ' ':
            out.append('_')
        elif ch.isascii() and (ch.isalnum() or ch in '!*+-/'):
            out.append(ch)
        else:
            out.append('=%02X' % c)
    return ''.join(out)

def ew(text, charset, rng):
    """RFC 2047 encode text in charset; words of <= 75 chars, split at
    character boundaries (each ISO-2022-JP chunk is self-contained)."""
    use_q = charset in ('iso-8859-1', 'utf-8') and rng.random() < 0.5
    csname = charset.upper() if rng.random() < 0.3 else charset
    words, chunk = [], ''
    def enc(s):
        b = s.encode(charset)
        if use_q:
            return '=?%s?Q?%s?=' % (csname, q_encode(b))
        return '=?%s?B?%s?=' % (csname, base64.b64encode(b).decode())
    for ch in text:
        if len(enc(chunk + ch)) > 75:
            words.append(enc(chunk)); chunk = ''
        chunk += ch
    if chunk:
        words.append(enc(chunk))
    return '\r\n '.join(words)

def addr(p, rng):
    name, cs, local, dom = p
    a = '%s@%s' % (local, dom)
    if name is None:
        return a
    if cs is None:
        if any(c in name for c in ',()\'.'):
            return '"%s" <%s>' % (name.replace('"', '\\"'), a)
        return '%s <%s>' % (name, a)
    return '%s <%s>' % (ew(name, cs, rng), a)

def fold_addrs(label, items):
    out = label + ': ' + items[0]
    for it in items[1:]:
        out += ',\r\n ' + it
    return out

def qp(text_bytes):
    # b2a_qp wants LF line ends; returns LF
    return binascii.b2a_qp(text_bytes, quotetabs=False, istext=True).replace(b'\n', b'\r\n')

def b64(data):
    return base64.encodebytes(data).replace(b'\n', b'\r\n')

def crlf(s):
    return s.replace('\r\n', '\n').replace('\n', '\r\n')

# ------------------------------------------------------------------ phase 1
def plan(n, seed):
    """metadata for n messages, sorted by date; deterministic."""
    rng = random.Random('plan:%s' % seed)
    npeople = len(PEOPLE_SRC)
    groups = []              # list of thread sizes
    total = 0
    while total < n:
        k = rng.randint(2, 8) if rng.random() < 0.079 else 1
        k = min(k, n - total)
        groups.append(k); total += k
    msgs = []
    for gi, k in enumerate(groups):
        start = rng.randrange(SPAN - 14 * 86400)
        members = rng.sample(range(npeople), min(npeople, rng.randint(2, 5)))
        if rng.random() < 0.75:
            topic = rng.choice(TOPICS).format(n=rng.randint(100, 99999), m=rng.randint(0, 20),
                                              y=rng.choice((2023, 2024, 2025)))
            tcs = None
        else:
            topic, tcs = rng.choice(TOPICS_INTL)
        t = start
        prev = []
        for j in range(k):
            if j:
                t += rng.randint(120, 2 * 86400)
            frm = members[j % len(members)] if j == 0 else rng.choice(members)
            to = [m for m in members if m != frm][:rng.randint(1, 3)] or [rng.randrange(npeople)]
            cc = [rng.randrange(npeople) for _ in range(rng.choice((0, 0, 0, 1, 2, 3)))]
            mid = '<%s.%x.%d@%s>' % (datetime.fromtimestamp(BASE.timestamp() + t, timezone.utc).strftime('%Y%m%d%H%M%S'),
                                     rng.getrandbits(40), len(msgs) + 1, PEOPLE_SRC[frm][3])
            msgs.append({
                't': t, 'tz': rng.choice(TZS), 'from': frm, 'to': to, 'cc': cc,
                'subject': topic, 'subject_cs': tcs, 'reply': j > 0,
                'irt': prev[-1] if prev else None, 'refs': list(prev[-10:]), 'mid': mid,
                'alt': rng.random() < 0.45, 'attach': rng.random() < 0.15,
            })
            prev.append(mid)
    msgs.sort(key=lambda m: (m['t'], m['mid']))
    return msgs

# ------------------------------------------------------------------ phase 2
def sentence(rng):
    if rng.random() < 0.04:
        return rng.choice(INTL_SENTENCES)
    w = [rng.choice(WORDS) for _ in range(rng.randint(5, 18))]
    return ' '.join(w).capitalize() + rng.choice('...?!')[:1]

def paragraphs(rng, n):
    out = []
    for _ in range(n):
        line, lines = '', []
        for _ in range(rng.randint(1, 6)):
            s = sentence(rng)
            if len(line) + len(s) + 1 > 72 and line:
                lines.append(line); line = s
            else:
                line = (line + ' ' + s).strip()
        lines.append(line)
        out.append('\n'.join(lines))
    return out

def text_part(text, rng, subtype='plain'):
    """returns (headers list, body bytes) for a text part."""
    ascii_only = all(ord(c) < 128 for c in text)
    if ascii_only and rng.random() < 0.8:
        return (['Content-Type: text/%s; charset="us-ascii"' % subtype,
                 'Content-Transfer-Encoding: 7bit'], crlf(text).encode())
    b = text.encode('utf-8')
    if rng.random() < 0.75:
        return (['Content-Type: text/%s; charset="utf-8"' % subtype,
                 'Content-Transfer-Encoding: quoted-printable'], qp(b))
    return (['Content-Type: text/%s; charset=UTF-8' % subtype,
             'Content-Transfer-Encoding: base64'], b64(crlf(text).encode('utf-8')))

def html_of(paras):
    esc = lambda s: s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    body = ''.join('<p style="margin:0 0 1em 0;font-family:Arial,sans-serif">%s</p>' %
                   esc(p).replace('\n', ' ') for p in paras)
    return ('<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" '
            'content="text/html; charset=utf-8"></head>\n<body>' + body + '</body></html>\n')

ATT_KINDS = [
    ('application/pdf', b'%PDF-1.5\n%\xe2\xe3\xcf\xd3\n', ['report', 'invoice', 'contract', 'scan', 'slides'], 'pdf'),
    ('image/png', b'\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR', ['screenshot', 'photo', 'diagram', 'chart'], 'png'),
    ('image/jpeg', b'\xff\xd8\xff\xe0\x00\x10JFIF\x00', ['IMG_', 'DSC', 'photo'], 'jpg'),
    ('application/zip', b'PK\x03\x04\x14\x00\x00\x00', ['archive', 'logs', 'export'], 'zip'),
]
INTL_FILENAMES = ['Résumé Müller', 'Übersicht Q3', 'отчёт', '報告書', 'naïve café menu']

def attachment(rng, boundary_rng):
    ctype, magic, stems, ext = rng.choice(ATT_KINDS)
    size = int(10240 * math.exp((rng.random() ** 4.5) * math.log(200)))
    size = min(size, 2 * 1024 * 1024)
    data = magic + rng.randbytes(max(0, size - len(magic)))
    if rng.random() < 0.2:
        fname = '%s.%s' % (rng.choice(INTL_FILENAMES), ext)
        enc = "UTF-8''" + quote(fname.encode('utf-8'), safe='')
        if rng.random() < 0.5:
            disp = 'attachment;\r\n filename*=%s' % enc
        else:   # RFC 2231 continuations
            parts = [enc[i:i + 30] for i in range(0, len(enc), 30)]
            disp = 'attachment' + ''.join(';\r\n filename*%d*=%s' % (i, p) if i == 0 else
                                          ';\r\n filename*%d*=%s' % (i, p) for i, p in enumerate(parts))
        ct = '%s;\r\n name="%s"' % (ctype, '=?utf-8?B?%s?=' % base64.b64encode(fname.encode()).decode())
    else:
        fname = '%s%d.%s' % (rng.choice(stems), rng.randint(1, 9999), ext)
        disp = 'attachment; filename="%s"' % fname
        ct = '%s; name="%s"' % (ctype, fname)
    hdr = ['Content-Type: ' + ct, 'Content-Disposition: ' + disp,
           'Content-Transfer-Encoding: base64']
    return hdr, b64(data)

def part_bytes(headers, body):
    return ('\r\n'.join(headers) + '\r\n\r\n').encode() + body

def multipart(subtype, parts, boundary, preamble=True):
    out = []
    if preamble:
        out.append(b'This is a multi-part message in MIME format.\r\n')
    for h, b in parts:
        out.append(b'\r\n--' + boundary.encode() + b'\r\n' if out else b'--' + boundary.encode() + b'\r\n')
        out.append(part_bytes(h, b))
    out.append(b'\r\n--' + boundary.encode() + b'--\r\n')
    return (['Content-Type: multipart/%s;\r\n boundary="%s"' % (subtype, boundary)], b''.join(out))

def fmt_date(t, tzmin):
    tz = timezone(timedelta(minutes=tzmin))
    d = datetime.fromtimestamp(BASE.timestamp() + t, tz)
    days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']
    months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
    sign = '+' if tzmin >= 0 else '-'
    return '%s, %d %s %d %02d:%02d:%02d %s%02d%02d' % (
        days[d.weekday()], d.day, months[d.month - 1], d.year, d.hour, d.minute, d.second,
        sign, abs(tzmin) // 60, abs(tzmin) % 60)

def message(i, m, seed):
    rng = random.Random('msg:%s:%d' % (seed, i))
    P = PEOPLE_SRC
    frm = P[m['from']]
    hdr = []
    hdr.append('Received: from mail%d.%s (mail%d.%s [192.0.2.%d])\r\n\tby mx.example.test with ESMTPS id %X\r\n\tfor <%s@%s>; %s' % (
        rng.randint(1, 9), frm[3], rng.randint(1, 9), frm[3], rng.randint(1, 254),
        rng.getrandbits(48), P[m['to'][0]][2], P[m['to'][0]][3], fmt_date(m['t'] + 2, m['tz'])))
    hdr.append('Date: ' + fmt_date(m['t'], m['tz']))
    hdr.append('From: ' + addr(frm, rng))
    hdr.append(fold_addrs('To', [addr(P[x], rng) for x in m['to']]))
    if m['cc']:
        hdr.append(fold_addrs('Cc', [addr(P[x], rng) for x in m['cc']]))
    subj = m['subject']
    if m['subject_cs']:
        s = ew(subj, m['subject_cs'], rng)
        hdr.append('Subject: ' + ('Re: ' if m['reply'] else '') + s)
    else:
        hdr.append('Subject: ' + ('Re: ' if m['reply'] else '') + subj)
    hdr.append('Message-ID: ' + m['mid'])
    if m['reply']:
        hdr.append('In-Reply-To: ' + m['irt'])
        hdr.append('References: ' + '\r\n '.join(m['refs']))
    hdr.append('MIME-Version: 1.0')
    r = rng.random()
    if r < 0.3:
        hdr.append('User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 Thunderbird/102.%d.0' % rng.randint(1, 15))
    elif r < 0.5:
        hdr.append('X-Mailer: Microsoft Outlook 16.0')
    if rng.random() < 0.1:
        hdr.append('List-Id: Team discussion <team.lists.example.net>')

    paras = paragraphs(rng, rng.randint(1, 8))
    if rng.random() < 0.3:
        paras.append('-- \n%s\n%s' % (frm[0] or frm[2], 'Sent from my phone' if rng.random() < 0.3 else 'Example Corp.'))
    text = '\n\n'.join(paras)
    if m['reply']:
        quoted = '\n'.join('> ' + l for l in '\n\n'.join(paragraphs(rng, rng.randint(1, 3))).split('\n'))
        text = text + '\n\nOn %s, someone wrote:\n%s\n' % (fmt_date(m['t'] - 3600, m['tz']), quoted)
    else:
        text += '\n'
    bnd = lambda: '=_mx_%016x' % rng.getrandbits(64)
    if m['alt']:
        ph, pb = text_part(text, rng, 'plain')
        hh, hb = text_part(html_of(paras), rng, 'html')
        body_h, body_b = multipart('alternative', [(ph, pb), (hh, hb)], bnd(), preamble=not m['attach'])
    else:
        body_h, body_b = text_part(text, rng)
    if m['attach']:
        parts = [(body_h, body_b)]
        for _ in range(1 if rng.random() < 0.8 else 2):
            parts.append(attachment(rng, rng))
        body_h, body_b = multipart('mixed', parts, bnd())
    return ('\r\n'.join(hdr + body_h) + '\r\n\r\n').encode('utf-8') + body_b

# ------------------------------------------------------------------ driver
G = {}

def work(rng_range):
    lo, hi = rng_range
    out = []
    for i in range(lo, hi):
        data = message(i + 1, G['plan'][i], G['seed'])
        if G['outdir']:
            with open(os.path.join(G['outdir'], '%06d.eml' % (i + 1)), 'wb', buffering=1 << 20) as f:
                f.write(data)
            out.append(len(data))
        else:
            out.append(data)
    return out

def mbox_entry(data, m):
    d = datetime.fromtimestamp(BASE.timestamp() + m['t'], timezone.utc)
    frm = PEOPLE_SRC[m['from']]
    line = 'From %s@%s %s\n' % (frm[2], frm[3], d.strftime('%a %b %e %H:%M:%S %Y'))
    body = data.replace(b'\r\n', b'\n')
    # mboxrd: any line matching ^>*From gets one more '>'
    lines = body.split(b'\n')
    for k, l in enumerate(lines):
        s = l.lstrip(b'>')
        if s.startswith(b'From '):
            lines[k] = b'>' + l
    body = b'\n'.join(lines)
    if not body.endswith(b'\n'):
        body += b'\n'
    return line.encode() + body + b'\n'

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(__doc__.split('\n')[1:]))
    p.add_argument('n', type=int)
    p.add_argument('out', nargs='?')
    p.add_argument('--seed', default='1')
    p.add_argument('--mbox')
    p.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    p.add_argument('--quiet', action='store_true')
    a = p.parse_args()
    if not a.mbox and not a.out:
        p.error('OUT directory (or --mbox FILE) required')
    t0 = time.monotonic()
    G['plan'] = plan(a.n, a.seed)
    G['seed'] = a.seed
    G['outdir'] = None if a.mbox else a.out
    if G['outdir']:
        os.makedirs(a.out, exist_ok=True)
    chunk = 100
    ranges = [(lo, min(lo + chunk, a.n)) for lo in range(0, a.n, chunk)]
    total = 0
    mb = open(a.mbox, 'wb', buffering=1 << 22) if a.mbox else None
    def consume(res, lo):
        nonlocal total
        for k, r in enumerate(res):
            if mb:
                e = mbox_entry(r, G['plan'][lo + k]); mb.write(e); total += len(r)
            else:
                total += r
    if a.jobs > 1 and a.n > chunk:
        ctx = multiprocessing.get_context('fork')
        with ctx.Pool(a.jobs) as pool:
            for (lo, hi), res in zip(ranges, pool.imap(work, ranges)):
                consume(res, lo)
    else:
        for lo, hi in ranges:
            consume(work((lo, hi)), lo)
    if mb:
        mb.close()
    dt = time.monotonic() - t0
    if not a.quiet:
        print('gen-mail: %d messages, %.1f MB (mean %.1f KB) in %.2fs (%.0f msg/s, %.0f MB/s)' % (
            a.n, total / 1e6, total / max(a.n, 1) / 1024, dt, a.n / dt, total / 1e6 / dt),
            file=sys.stderr)

if __name__ == '__main__':
    main()
