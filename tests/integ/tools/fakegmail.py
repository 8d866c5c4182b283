#!/usr/bin/python3
"""Fake Gmail API v1 server for tests, on 127.0.0.1 (standard library only).

Written from Google's published Gmail API v1 REST reference (resources
Message, MessagePart, Label, History; users.messages.list/get/send/modify/
batchModify/delete, users.history.list, users.labels.list/create,
users.getProfile; the batch guide; the usage-limits page; the JSON error
shape).  Base path /gmail/v1, batch endpoint /batch/gmail/v1, media upload
POST /upload/gmail/v1/users/{userId}/messages/send (body message/rfc822).

usage: fakegmail.py --secret-file F [--mailbox USER=PATH]... [--cert PEM
       --key PEM] [--port 0] [--log FILE] [--seed N] [--quota-per-minute N]
       [--quota-error 429|403] [--retry-after S] [--history-keep N]
       [--default-scope SCOPES] [--fault KIND[:COUNT[:METHOD]]]...

The first line on stdout is the port.  Stops on SIGTERM, and by itself when
its parent process goes away.

Mailboxes.  --mailbox USER=PATH loads PATH into USER's mailbox: a Maildir
(cur/ and new/; S flag -> no UNREAD, F -> STARRED, subfolder .Sent -> SENT,
other .Name subfolders -> a user label Name) or a directory of messages
walked in sorted order (mbox files split like deliver.py; README*, LICENSE*,
COPYING*, NOTICE*, MANIFEST* skipped); those get INBOX and UNREAD.  Any
other authenticated user gets an empty mailbox.  Ids are 16 hex digits
(Gmail's form), strictly increasing in delivery order with random gaps.
A message's threadId is the id of its thread's first message: it joins the
thread of the first message named in In-Reply-To/References that the
mailbox holds; failing that, a message whose Subject starts with Re:/Fwd:
joins the newest thread with the same subject (prefixes stripped); else it
starts a thread.  That is for mail that arrives; messages.send, as
Gmail's reference says, files a message in an existing thread only when
the request names it in threadId and the message's In-Reply-To or
References name a message of that thread and its Subject matches the
thread's (prefixes stripped); otherwise the sent message starts a thread
(an unknown threadId is 404).  internalDate is the Date header (ms since the epoch, as a
string), else the time of delivery.  historyId is monotonic with random
gaps (not contiguous); every change (add, delete, label added/removed) is
one history record.  Loading the mailbox creates messagesAdded records too.

Auth.  Authorization: Bearer TOKEN, where TOKEN is an HS256 JWT signed
with the raw secret in --secret-file: the tokens tools/fake_idp.py issues
and Dovecot's oauth2 passdb accepts (same DIR/keys/secret.raw), so one fake
IdP serves IMAP, SMTP and this server.  Claims: email (or sub) is the user,
exp/nbf are checked, scope (space separated, as fake_idp.py --scope sets
it) gives the scopes; without a scope claim --default-scope applies
(default https://mail.google.com/).  Missing/invalid/expired -> 401.
Scopes (short forms such as gmail.metadata accepted too):
  list, history, get minimal|metadata, getProfile: mail.google.com,
      gmail.modify, gmail.readonly or gmail.metadata
  get raw|full, list with q: mail.google.com, gmail.modify, gmail.readonly
      (gmail.metadata alone -> 403 insufficientPermissions)
  modify, batchModify: mail.google.com, gmail.modify
  send: mail.google.com, gmail.modify, gmail.compose, gmail.send
  labels.list: the read scopes or gmail.labels; labels.create:
      mail.google.com, gmail.modify, gmail.labels;  delete: mail.google.com
userId is "me" or the token's own address (else 403 forbidden).

Quota (usage-limits page): units per call messages.list 5, messages.get 5,
messages.send 100, messages.modify 5, messages.batchModify 50,
messages.delete 10, history.list 2, labels.list 1, labels.create 5,
getProfile 1, charged per user against --quota-per-minute (default 15000)
over a sliding 60 s window; each call inside a batch is charged on its own.
A call over budget is not charged and gets 429 rateLimitExceeded
(status RESOURCE_EXHAUSTED) or, with --quota-error 403, 403
userRateLimitExceeded, both with Retry-After (--retry-after S, default: the
seconds until enough units are free).  Errors are Google's shape
  {"error": {"code", "message", "errors": [{"message", "domain", "reason"}],
             "status"}}

history.list returns 404 notFound when startHistoryId is older than the
oldest history kept: --history-keep N keeps the last N records, and
POST /_fake/history {"user", "expire": true} forgets all of them.

Page tokens (messages.list, history.list) are opaque to clients; here they
name the position after the page's last item, so a message added or deleted
between two pages neither repeats nor hides another.  Request bodies may be
sent with Content-Length or chunked (at most 64 MiB).  Batch calls:
each part's Content-ID <X> is answered as <response-X>; a part without its
own Authorization header uses the batch request's.

Faults (--fault KIND[:COUNT[:METHOD]] or POST /_fake/fault): the next COUNT
(default 1) API calls (of METHOD, e.g. messages.get, if given) are answered
  backend       500 backendError            unavailable  503 backendError
  malformed     200, a truncated JSON body   huge        200, a 10 MB JSON body
  close         connection closed without an answer
  pagetoken_loop  list/history: nextPageToken = the token just used (a loop)
  history_backwards  history.list: historyId and record ids below startHistoryId
  bad_id        list/history/get: message ids "../../etc/passwd" and "a/b"
  bad_label     labels.list/get: a label name with control characters
  wrong_types   ids as numbers, internalDate as a number, labelIds a string
  rate          429 rateLimitExceeded with Retry-After: 1 (inside a batch:
                that part only)
  gone          messages.get: the message is deleted (messagesDeleted)
                just before the call is answered, so it answers 404
Other API calls are unaffected.  Faulted calls are charged like others.

Control API (no auth, JSON bodies; USER defaults to the only/first mailbox):
  POST /_fake/deliver?user=U[&labels=INBOX,UNREAD]   body: the raw message
       -> {"id", "threadId", "historyId"}
  POST /_fake/delete  {"user", "id"}                  (messagesDeleted)
  POST /_fake/label   {"user", "id", "add": [...], "remove": [...]}
  POST /_fake/quota   {"per_minute": N, "error": "429"|"403",
                       "retry_after": S|null, "reset": true}
  POST /_fake/fault   {"kind", "count", "method"} or {"clear": true}
  POST /_fake/history {"user", "expire": true} or {"user", "keep": N}
  GET  /_fake/stats   {"requests": {METHOD: n}, "http": {METHOD: n},
                       "status": {CODE: n},
                       "units": {USER: n}, "rejected": {USER: n},
                       "users": {USER: {"messages", "historyId", "floor"}},
                       "sent": [{"user", "id", "threadId"}]}
"requests" counts API calls (each call inside a batch once), "http" the
HTTP requests (a batch is one, "batch"), as Google's quota and its
per-request limits see them.
Each API call is appended to --log as one JSON line {"t", "method", "path",
"api", "user", "status", "units"} (no tokens, no bodies).
"""
import argparse, base64, collections, email.utils, hashlib, hmac, json, math
import os, random, re, signal, socketserver, ssl, sys, threading, time
import urllib.parse
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deliver import messages as corpus_messages  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--secret-file', required=True)
ap.add_argument('--mailbox', action='append', default=[], metavar='USER=PATH')
ap.add_argument('--cert')
ap.add_argument('--key')
ap.add_argument('--port', type=int, default=0)
ap.add_argument('--log')
ap.add_argument('--seed', type=int, default=1)
ap.add_argument('--quota-per-minute', type=int, default=15000)
ap.add_argument('--quota-error', choices=('429', '403'), default='429')
ap.add_argument('--retry-after', type=int)
ap.add_argument('--history-keep', type=int, default=0)
ap.add_argument('--default-scope', default='https://mail.google.com/')
ap.add_argument('--fault', action='append', default=[],
                metavar='KIND[:COUNT[:METHOD]]')
ARGS = ap.parse_args()

SECRET = open(ARGS.secret_file, 'rb').read()
LOCK = threading.RLock()
LOGF = open(ARGS.log, 'a', buffering=1) if ARGS.log else None
RNG = random.Random(ARGS.seed)
MAX_BODY = 64 << 20

UNITS = {'messages.list': 5, 'messages.get': 5, 'messages.send': 100,
         'messages.modify': 5, 'messages.batchModify': 50,
         'messages.delete': 10, 'history.list': 2, 'labels.list': 1,
         'labels.create': 5, 'getProfile': 1}
SYSTEM_LABELS = ['INBOX', 'SENT', 'DRAFT', 'SPAM', 'TRASH', 'UNREAD',
                 'STARRED', 'IMPORTANT', 'CHAT', 'CATEGORY_PERSONAL',
                 'CATEGORY_SOCIAL', 'CATEGORY_PROMOTIONS', 'CATEGORY_UPDATES',
                 'CATEGORY_FORUMS']
HIST_TYPES = {'messageAdded': 'messagesAdded',
              'messageDeleted': 'messagesDeleted',
              'labelAdded': 'labelsAdded', 'labelRemoved': 'labelsRemoved'}
FAULT_KINDS = ('backend', 'unavailable', 'malformed', 'huge', 'close',
               'pagetoken_loop', 'history_backwards', 'bad_id', 'bad_label',
               'wrong_types', 'rate', 'gone')
STATUS = {400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED',
          403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ALREADY_EXISTS',
          413: 'INVALID_ARGUMENT', 429: 'RESOURCE_EXHAUSTED',
          500: 'INTERNAL', 503: 'UNAVAILABLE'}
REASONS = {400: 'badRequest', 404: 'notFound', 409: 'alreadyExists',
           413: 'badRequest', 500: 'backendError',
           503: 'backendError'}
PHRASES = {200: 'OK', 204: 'No Content', 400: 'Bad Request',
           401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
           409: 'Conflict', 413: 'Payload Too Large',
           429: 'Too Many Requests', 500: 'Internal Server Error',
           503: 'Service Unavailable'}


class ApiError(Exception):
    def __init__(self, code, message, reason=None, domain='global',
                 headers=(), status=None, location=None):
        super().__init__(message)
        self.code, self.message, self.headers = code, message, list(headers)
        self.reason = reason or REASONS.get(code, 'failedPrecondition')
        self.domain, self.status = domain, status or STATUS.get(code, 'UNKNOWN')
        self.location = location

    def body(self):
        e = {'message': self.message, 'domain': self.domain,
             'reason': self.reason}
        if self.location:
            e['locationType'], e['location'] = self.location
        return {'error': {'code': self.code, 'message': self.message,
                          'errors': [e], 'status': self.status}}


def b64url(b):
    return base64.urlsafe_b64encode(b).decode()


def unb64url(s):
    if not isinstance(s, str) or not re.fullmatch(r'[A-Za-z0-9_\-+/]*=*', s):
        raise ApiError(400, 'Invalid value for ByteString: not base64url')
    s = s.rstrip('=').replace('+', '-').replace('/', '_')
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


# ---- messages ----------------------------------------------------------

def header_block(raw):
    """[(name, value)] of the top-level header, unfolded, raw (encoded words
    are left as they are, like Gmail's payload.headers)."""
    m = re.search(rb'\r?\n\r?\n', raw)
    head = raw[:m.start()] if m else raw
    out = []
    for ln in re.split(rb'\r?\n', head):
        if ln[:1] in (b' ', b'\t') and out:
            out[-1][1] += ' ' + ln.strip().decode('utf-8', 'replace')
        elif b':' in ln:
            k, _, v = ln.partition(b':')
            out.append([k.decode('utf-8', 'replace').strip(),
                        v.strip().decode('utf-8', 'replace')])
    return [(k, v) for k, v in out]


def hget(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def base_subject(s):
    s = (s or '').strip()
    while True:
        t = re.sub(r'^(re|fw|fwd|aw|sv)\s*(\[\d+\])?\s*:\s*', '', s,
                   flags=re.I)
        if t == s:
            return s.lower()
        s = t


def parse_mime(raw):
    try:
        return BytesParser(policy=policy.compat32).parsebytes(raw)
    except Exception:
        return None


def snippet_of(raw):
    msg = parse_mime(raw)
    if msg is None:
        return ''
    for part in msg.walk():
        if part.get_content_type() == 'text/plain':
            try:
                data = part.get_payload(decode=True) or b''
                cs = part.get_content_charset() or 'utf-8'
                text = data.decode(cs, 'replace')
            except (LookupError, Exception):
                text = (part.get_payload(decode=True) or b'').decode(
                    'utf-8', 'replace')
            return ' '.join(text.split())[:200]
    return ''


def payload_full(part, part_id):
    """MessagePart: partId, mimeType, filename, headers, body{size,data},
    parts (bodies always inline, never attachmentId)."""
    hdrs = [{'name': k, 'value': re.sub(r'\r?\n[ \t]+', ' ', str(v))}
            for k, v in part.items()]
    d = {'partId': part_id, 'mimeType': part.get_content_type(),
         'filename': part.get_filename() or '', 'headers': hdrs}
    if part.is_multipart():
        d['body'] = {'size': 0}
        subs = part.get_payload()
        d['parts'] = [payload_full(p, ('%s.%d' % (part_id, i)) if part_id
                                   else str(i)) for i, p in enumerate(subs)]
    else:
        data = part.get_payload(decode=True) or b''
        d['body'] = {'size': len(data)}
        if data:
            d['body']['data'] = b64url(data)
    return d


class Msg:
    def __init__(self, mid, tid, raw, labels, date_ms):
        self.id, self.thread_id, self.raw = mid, tid, raw
        self.labels, self.date_ms = list(labels), date_ms
        self.headers = header_block(raw)
        self.snippet = snippet_of(raw)
        self.history_id = 0

    def ref(self):
        return {'id': self.id, 'threadId': self.thread_id}

    def with_labels(self):
        return {'id': self.id, 'threadId': self.thread_id,
                'labelIds': list(self.labels)}

    def resource(self, fmt='full', meta_headers=None):
        r = {'id': self.id, 'threadId': self.thread_id,
             'labelIds': list(self.labels), 'snippet': self.snippet,
             'sizeEstimate': len(self.raw),
             'historyId': str(self.history_id),
             'internalDate': str(self.date_ms)}
        if fmt == 'raw':
            r['raw'] = b64url(self.raw)
        elif fmt == 'metadata':
            want = {h.lower() for h in meta_headers or ()}
            r['payload'] = {'mimeType': self.mime_type(), 'headers': [
                {'name': k, 'value': v} for k, v in self.headers
                if not want or k.lower() in want]}
        elif fmt == 'full':
            msg = parse_mime(self.raw)
            if msg is None:
                r['payload'] = {'partId': '', 'mimeType': 'text/plain',
                                'filename': '', 'headers': [],
                                'body': {'size': 0}}
            else:
                r['payload'] = payload_full(msg, '')
        return r

    def mime_type(self):
        ct = hget(self.headers, 'content-type') or 'text/plain'
        return ct.split(';')[0].strip().lower() or 'text/plain'


class Mailbox:
    def __init__(self, user):
        self.user = user
        self.msgs = collections.OrderedDict()
        self.labels = collections.OrderedDict(
            (l, {'id': l, 'name': l, 'type': 'system'})
            for l in SYSTEM_LABELS)
        self.by_msgid = {}          # Message-ID -> threadId
        self.subjects = {}          # base subject -> newest threadId
        self.history = []           # records, oldest first
        self.history_id = RNG.randint(1000, 9000)
        self.floor = self.history_id    # oldest startHistoryId accepted
        self.next_id = 0x18c0000000000000 + RNG.randint(0, 1 << 40)
        self.next_label = 1
        self.quota = collections.deque()   # (time, units)

    def bump(self):
        self.history_id += RNG.randint(1, 97)
        return self.history_id

    def record(self, kind, entries, msgs):
        hid = self.bump()
        rec = {'id': hid, 'messages': [m.ref() for m in msgs], kind: entries}
        for m in msgs:
            m.history_id = hid
        self.history.append(rec)
        if ARGS.history_keep and len(self.history) > ARGS.history_keep:
            self.expire(ARGS.history_keep)
        return hid

    def expire(self, keep):
        drop = self.history[:max(0, len(self.history) - keep)]
        self.history = self.history[len(drop):]
        if drop:
            self.floor = drop[-1]['id']
        if keep == 0:
            self.floor = self.history_id

    def label_id(self, name_or_id):
        if name_or_id in self.labels:
            return name_or_id
        for l in self.labels.values():
            if l['name'].lower() == str(name_or_id).lower():
                return l['id']
        return None

    def add_label(self, name):
        lid = 'Label_%d' % self.next_label
        self.next_label += 1
        self.labels[lid] = {'id': lid, 'name': name, 'type': 'user',
                            'messageListVisibility': 'show',
                            'labelListVisibility': 'labelShow'}
        return self.labels[lid]

    def thread_for(self, headers, want=None):
        if want is not None:
            if not any(m.thread_id == want for m in self.msgs.values()):
                raise ApiError(404, 'Requested entity was not found.')
            return want
        refs = ' '.join(filter(None, [hget(headers, 'in-reply-to'),
                                      hget(headers, 'references')]))
        for r in re.findall(r'<[^<>]+>', refs):
            if r in self.by_msgid:
                return self.by_msgid[r]
        subj = hget(headers, 'subject') or ''
        if re.match(r'\s*(re|fw|fwd)\s*:', subj, re.I):
            return self.subjects.get(base_subject(subj))
        return None

    def reply_fits(self, headers, tid):
        """messages.send: does a message with HEADERS belong in thread
        TID (references one of its messages, same base subject)?"""
        refs = ' '.join(filter(None, [hget(headers, 'in-reply-to'),
                                      hget(headers, 'references')]))
        if not any(self.by_msgid.get(r) == tid
                   for r in re.findall(r'<[^<>]+>', refs)):
            return False
        bs = base_subject(hget(headers, 'subject'))
        return any(base_subject(hget(header_block(m.raw), 'subject')) == bs
                   for m in self.msgs.values() if m.thread_id == tid)

    def deliver(self, raw, labels, thread=None, date_ms=None, sent=False):
        headers = header_block(raw)
        if sent:
            # messages.send: the threadId of the request, if it fits
            if thread is not None:
                self.thread_for(headers, thread)    # 404 if unknown
            tid_hint = thread if thread is not None and \
                self.reply_fits(headers, thread) else None
        else:
            tid_hint = self.thread_for(headers, thread)
        self.next_id += RNG.randint(1, 4096)
        mid = '%016x' % self.next_id
        tid = tid_hint or mid
        if date_ms is None:
            # the Date header unless absent, unparsable or absurd (Gmail
            # uses the time it received the message): then now
            date_ms = now_ms = int(time.time() * 1000)
            try:
                dt = email.utils.parsedate_to_datetime(
                    hget(headers, 'date') or '')
                date_ms = int(dt.timestamp() * 1000)
            except Exception:
                pass
            if not 0 < date_ms <= now_ms + 86400000:
                date_ms = now_ms
        m = Msg(mid, tid, raw, labels, date_ms)
        self.msgs[mid] = m
        msgid = hget(headers, 'message-id')
        if msgid:
            self.by_msgid.setdefault(msgid.strip(), tid)
        bs = base_subject(hget(headers, 'subject'))
        if bs:
            self.subjects[bs] = tid
        self.record('messagesAdded', [{'message': m.with_labels()}], [m])
        return m

    def delete(self, mid):
        m = self.msgs.pop(mid, None)
        if m is None:
            raise ApiError(404, 'Requested entity was not found.')
        self.record('messagesDeleted', [{'message': m.with_labels()}], [m])

    def modify(self, m, add, remove):
        for l in list(add) + list(remove):
            if not isinstance(l, str) or l not in self.labels or \
                    l == 'DRAFT':
                raise ApiError(400, 'Invalid label: %s' % l)
        added = [l for l in add if l not in m.labels]
        removed = [l for l in remove if l in m.labels and l not in add]
        m.labels = [l for l in m.labels if l not in removed] + added
        if added:
            self.record('labelsAdded', [{'message': m.with_labels(),
                                         'labelIds': added}], [m])
        if removed:
            self.record('labelsRemoved', [{'message': m.with_labels(),
                                           'labelIds': removed}], [m])

    def get(self, mid):
        m = self.msgs.get(mid)
        if m is None:
            raise ApiError(404, 'Requested entity was not found.')
        return m


MAILBOXES = collections.OrderedDict()
STATS = {'requests': collections.Counter(), 'http': collections.Counter(),
         'status': collections.Counter(),
         'units': collections.Counter(), 'rejected': collections.Counter(),
         'sent': []}
QUOTA = {'per_minute': ARGS.quota_per_minute, 'error': ARGS.quota_error,
         'retry_after': ARGS.retry_after}
FAULTS = []     # [{'kind', 'count', 'method'}]
SKIP = re.compile(r'^(README|LICENSE|COPYING|NOTICE|MANIFEST)', re.I)


def mailbox(user):
    user = user.lower()
    with LOCK:
        if user not in MAILBOXES:
            MAILBOXES[user] = Mailbox(user)
        return MAILBOXES[user]


def load(user, path):
    mb = mailbox(user)
    if not path:
        return
    if os.path.isdir(os.path.join(path, 'cur')):
        folders = [('', path)] + sorted(
            (d[1:], os.path.join(path, d)) for d in os.listdir(path)
            if d.startswith('.') and os.path.isdir(os.path.join(path, d, 'cur')))
        for name, d in folders:
            if name == '':
                base = ['INBOX']
            elif name.lower() == 'sent':
                base = ['SENT']
            else:
                lid = mb.label_id(name) or mb.add_label(name)['id']
                base = [lid]
            for sub in ('cur', 'new'):
                for f in sorted(os.listdir(os.path.join(d, sub))):
                    flags = f.rpartition(':2,')[2] if ':2,' in f else ''
                    labels = list(base)
                    if 'S' not in flags:
                        labels.append('UNREAD')
                    if 'F' in flags:
                        labels.append('STARRED')
                    with open(os.path.join(d, sub, f), 'rb') as fh:
                        mb.deliver(fh.read(), labels)
        return
    for label, raw in corpus_messages([path]):
        if SKIP.match(os.path.basename(label)):
            continue
        mb.deliver(raw, ['INBOX', 'UNREAD'])


# ---- auth --------------------------------------------------------------

def scopes_of(s):
    out = set()
    for x in (s or '').split():
        x = x.replace('https://www.googleapis.com/auth/', '')
        out.add('mail.google.com' if 'mail.google.com' in x else x)
    return out


READ = {'mail.google.com', 'gmail.modify', 'gmail.readonly', 'gmail.metadata'}
FULL_READ = {'mail.google.com', 'gmail.modify', 'gmail.readonly'}
MODIFY = {'mail.google.com', 'gmail.modify'}
SEND = {'mail.google.com', 'gmail.modify', 'gmail.compose', 'gmail.send'}
LABELS_READ = READ | {'gmail.labels'}
LABELS_WRITE = {'mail.google.com', 'gmail.modify', 'gmail.labels'}
DELETE = {'mail.google.com'}


def unauth(msg, reason='authError'):
    return ApiError(401, msg, reason, location=('header', 'Authorization'),
                    headers=[('WWW-Authenticate', 'Bearer realm="https://'
                              'accounts.google.com/", error="invalid_token"')])


def authenticate(auth_header):
    """-> (user, scopes) or raises 401."""
    if not auth_header:
        raise unauth('Request is missing required authentication '
                     'credential. Expected OAuth 2 access token.', 'required')
    if not auth_header.startswith('Bearer '):
        raise unauth('Invalid Credentials')
    tok = auth_header[7:].strip()
    parts = tok.split('.')
    try:
        if len(parts) != 3:
            raise ValueError
        si = (parts[0] + '.' + parts[1]).encode()
        sig = base64.urlsafe_b64decode(parts[2] + '=' * (-len(parts[2]) % 4))
        want = hmac.new(SECRET, si, hashlib.sha256).digest()
        hdr = json.loads(base64.urlsafe_b64decode(
            parts[0] + '=' * (-len(parts[0]) % 4)))
        claims = json.loads(base64.urlsafe_b64decode(
            parts[1] + '=' * (-len(parts[1]) % 4)))
        # a non-canonical encoding of the right bytes is a forgery too
        if hdr.get('alg') != 'HS256' or not hmac.compare_digest(sig, want) \
                or base64.urlsafe_b64encode(sig).rstrip(b'=') != \
                parts[2].encode():
            raise ValueError
    except (ValueError, TypeError):
        raise unauth('Invalid Credentials')
    now = time.time()
    if not isinstance(claims, dict) or \
            not isinstance(claims.get('exp'), (int, float)) or \
            claims['exp'] <= now or claims.get('nbf', 0) > now + 5:
        raise unauth('Invalid Credentials (token expired or not yet valid)')
    user = claims.get('email') or claims.get('sub')
    if not isinstance(user, str) or not user:
        raise unauth('Invalid Credentials')
    sc = claims.get('scope', ARGS.default_scope)
    return user.lower(), scopes_of(sc if isinstance(sc, str) else '')


def need(scopes, allowed, what=None):
    if scopes & allowed:
        return
    raise ApiError(403, what or 'Request had insufficient authentication '
                   'scopes.', 'insufficientPermissions', headers=[
                       ('WWW-Authenticate', 'Bearer realm="https://accounts.'
                        'google.com/", error="insufficient_scope"')])


# ---- quota and faults --------------------------------------------------

def charge(mb, method):
    units = UNITS.get(method, 1)
    now = time.time()
    with LOCK:
        while mb.quota and mb.quota[0][0] <= now - 60:
            mb.quota.popleft()
        used = sum(u for _, u in mb.quota)
        if used + units > QUOTA['per_minute']:
            STATS['rejected'][mb.user] += 1
            ra = QUOTA['retry_after']
            if ra is None:
                # seconds until enough of the window has slid out
                need_free, t = used + units - QUOTA['per_minute'], now + 1
                for ts, u in mb.quota:
                    need_free -= u
                    if need_free <= 0:
                        t = ts + 60
                        break
                ra = max(1, math.ceil(t - now))
            hdr = [('Retry-After', str(ra))]
            if QUOTA['error'] == '403':
                raise ApiError(403, 'User Rate Limit Exceeded',
                               'userRateLimitExceeded', 'usageLimits', hdr)
            raise ApiError(429, 'Rate Limit Exceeded', 'rateLimitExceeded',
                           'usageLimits', hdr)
        mb.quota.append((now, units))
        STATS['units'][mb.user] += units
    return units


def take_fault(method):
    with LOCK:
        for f in FAULTS:
            if f['count'] > 0 and f.get('method') in (None, '', method):
                f['count'] -= 1
                return f['kind']
    return None


def add_fault(kind, count=1, method=None):
    if kind not in FAULT_KINDS:
        raise ApiError(400, 'unknown fault kind %r (one of %s)'
                       % (kind, ', '.join(FAULT_KINDS)))
    with LOCK:
        FAULTS.append({'kind': kind, 'count': int(count), 'method': method})


# ---- the API -----------------------------------------------------------

def one(q, name, default=None):
    v = q.get(name)
    return v[0] if v else default


def int_param(q, name, default, lo, hi):
    v = one(q, name)
    if v is None:
        return default
    try:
        n = int(v)
    except ValueError:
        raise ApiError(400, 'Invalid value for %s: %s' % (name, v[:40]))
    if n < lo:
        raise ApiError(400, 'Invalid value for %s: %d' % (name, n))
    return min(n, hi)


# Page tokens name the sort key of the last item of the page, not an
# offset, so that messages added or deleted between two pages neither
# repeat nor hide others.  A token without a key ('s:') is the first page.
def page_token(key):
    s = 's:' if key is None else 'k:' + ':'.join(str(k) for k in key)
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip('=')


def page_after(tok, items, key, reverse):
    """the items after the key the token names (items sorted by key)."""
    if tok is None:
        return items
    try:
        s = base64.urlsafe_b64decode(tok + '=' * (-len(tok) % 4)).decode()
        if s == 's:':
            return items
        if not s.startswith('k:'):
            raise ValueError
        a, _, b = s[2:].partition(':')
        last = (int(a), b) if b else (int(a),)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, 'Invalid pageToken')
    if reverse:
        return [i for i in items if key(i) < last]
    return [i for i in items if key(i) > last]


def q_match(m, mb, q):
    """The subset of Gmail's search syntax this fake implements: from:,
    to:, subject:, label:, in:, is:unread|read|starred, after:/before:
    (YYYY/MM/DD or epoch seconds), and bare words (substring of the raw
    message, case-insensitive).  Terms are ANDed."""
    for term in re.findall(r'(?:\S+:)?"[^"]*"|\S+', q):
        key, _, val = term.partition(':') if ':' in term else ('', '', term)
        val = val.strip('"').lower()
        if key in ('from', 'to', 'subject'):
            ok = val in (hget(m.headers, key) or '').lower()
        elif key in ('label', 'in'):
            lid = mb.label_id(val.upper()) or mb.label_id(val)
            ok = lid in m.labels
        elif key == 'is':
            ok = {'unread': 'UNREAD' in m.labels,
                  'read': 'UNREAD' not in m.labels,
                  'starred': 'STARRED' in m.labels}.get(val, False)
        elif key in ('after', 'before'):
            try:
                t = int(val) if val.isdigit() else time.mktime(
                    time.strptime(val, '%Y/%m/%d'))
            except ValueError:
                raise ApiError(400, 'Invalid query: %s' % term[:40])
            ok = m.date_ms >= t * 1000 if key == 'after' else \
                m.date_ms < t * 1000
        else:
            ok = term.lower().strip('"') in m.raw.decode(
                'utf-8', 'replace').lower()
        if not ok:
            return False
    return True


def messages_list(mb, q, scopes, fault):
    n = int_param(q, 'maxResults', 100, 1, 500)
    tok = one(q, 'pageToken') or None
    want = q.get('labelIds', [])
    spam_trash = one(q, 'includeSpamTrash', 'false') == 'true'
    query = one(q, 'q')
    for l in want:
        if l not in mb.labels:
            raise ApiError(400, 'Invalid label: %s' % l[:60])
    def key(m):
        return (m.date_ms, m.id)
    msgs = sorted(mb.msgs.values(), key=key, reverse=True)
    sel = []
    for m in msgs:
        if want and not all(l in m.labels for l in want):
            continue
        if not spam_trash and not set(want) & {'SPAM', 'TRASH'} and \
                set(m.labels) & {'SPAM', 'TRASH'}:
            continue
        if query and not q_match(m, mb, query):
            continue
        sel.append(m)
    rest = page_after(tok, sel, key, True)
    page = rest[:n]
    r = {'resultSizeEstimate': len(sel)}
    if page:
        r['messages'] = [m.ref() for m in page]
    if len(rest) > n:
        r['nextPageToken'] = page_token(key(page[-1]))
    if fault == 'pagetoken_loop':
        r['nextPageToken'] = tok or page_token(None)
    elif fault == 'bad_id':
        r['messages'] = [{'id': '../../etc/passwd', 'threadId': 'a/b'},
                         {'id': 'a/b', 'threadId': '..'}] + \
            r.get('messages', [])
    elif fault == 'wrong_types':
        r = {'messages': [{'id': 12345, 'threadId': None}],
             'resultSizeEstimate': 'many', 'nextPageToken': 7}
    return r


def messages_get(mb, mid, q, scopes, fault):
    fmt = one(q, 'format', 'full')
    if fmt not in ('minimal', 'metadata', 'raw', 'full'):
        raise ApiError(400, 'Invalid value at \'format\': %s' % fmt[:40])
    m = mb.get(mid)
    r = m.resource(fmt, q.get('metadataHeaders'))
    if fault == 'bad_id':
        r['id'], r['threadId'] = 'a/b', '../..'
    elif fault == 'wrong_types':
        r['internalDate'] = m.date_ms
        r['labelIds'] = ','.join(m.labels)
        r['historyId'] = m.history_id
        r['sizeEstimate'] = str(r['sizeEstimate'])
    elif fault == 'bad_label':
        r['labelIds'] = r['labelIds'] + ['Label_evil\n\x1b[31m']
    return r


def json_body(body):
    try:
        obj = json.loads(body.decode('utf-8') or '{}')
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, 'Invalid JSON payload received.')
    if not isinstance(obj, dict):
        raise ApiError(400, 'Invalid JSON payload received. Expected an '
                       'object.')
    return obj


def str_list(obj, name):
    v = obj.get(name, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ApiError(400, 'Invalid value at \'%s\': a list of strings '
                       'expected' % name)
    return v


def messages_send(mb, raw, thread):
    if not raw.strip():
        raise ApiError(400, "'raw' RFC822 payload message string or "
                       "uploading message via /upload/* URL required")
    h = header_block(raw)
    rcpts = ' '.join(filter(None, (hget(h, k) for k in ('to', 'cc', 'bcc'))))
    if not rcpts.strip():
        raise ApiError(400, 'Recipient address required')
    if thread is not None and not isinstance(thread, str):
        raise ApiError(400, "Invalid value at 'message.thread_id'")
    labels = ['SENT']
    addrs = [a.lower() for _, a in email.utils.getaddresses([rcpts])]
    if mb.user in addrs:
        labels += ['INBOX', 'UNREAD']
    m = mb.deliver(raw, labels, thread, int(time.time() * 1000), sent=True)
    STATS['sent'].append({'user': mb.user, 'id': m.id,
                          'threadId': m.thread_id})
    return {'id': m.id, 'threadId': m.thread_id, 'labelIds': list(m.labels)}


def history_list(mb, q, fault):
    s = one(q, 'startHistoryId')
    if s is None:
        raise ApiError(400, 'Required parameter: startHistoryId')
    try:
        start = int(s)
        if start < 0:
            raise ValueError
    except ValueError:
        raise ApiError(400, 'Invalid startHistoryId: %s' % s[:40])
    if start < mb.floor:
        raise ApiError(404, 'Requested entity was not found.')
    n = int_param(q, 'maxResults', 100, 1, 500)
    tok = one(q, 'pageToken') or None
    types = q.get('historyTypes', [])
    for t in types:
        if t not in HIST_TYPES:
            raise ApiError(400, 'Invalid value at \'history_types\': %s'
                           % t[:40])
    keys = [HIST_TYPES[t] for t in types] or list(HIST_TYPES.values())
    label = one(q, 'labelId')
    recs = []
    for rec in mb.history:
        if rec['id'] <= start:
            continue
        out = {'id': str(rec['id']), 'messages': rec['messages']}
        keep = False
        for k in keys:
            ents = [e for e in rec.get(k, ())
                    if label is None or label in e['message']['labelIds'] or
                    label in e.get('labelIds', ())]
            if ents:
                out[k] = ents
                keep = True
        if keep:
            recs.append(out)
    def key(h):
        return (int(h['id']),)
    rest = page_after(tok, recs, key, False)
    page = rest[:n]
    r = {'historyId': str(mb.history_id)}
    if page:
        r['history'] = page
    if len(rest) > n:
        r['nextPageToken'] = page_token(key(page[-1]))
    if fault == 'pagetoken_loop':
        r['nextPageToken'] = tok or page_token(None)
    elif fault == 'history_backwards':
        r['historyId'] = str(max(0, start - 1000))
        for i, h in enumerate(r.get('history', [])):
            h['id'] = str(max(0, start - 1 - i))
    elif fault == 'bad_id':
        r['history'] = [{'id': str(mb.history_id), 'messages': [
            {'id': '../../etc/passwd', 'threadId': 'a/b'}],
            'messagesAdded': [{'message': {'id': 'a/b', 'threadId': '..',
                                           'labelIds': ['INBOX']}}]}]
    elif fault == 'wrong_types':
        r['historyId'] = mb.history_id
    return r


def labels_list(mb, fault):
    r = {'labels': [dict(l) for l in mb.labels.values()]}
    if fault == 'bad_label':
        r['labels'].append({'id': 'Label_evil', 'type': 'user',
                            'name': 'evil\x01\x1b[31mred\nInjected: yes'})
    elif fault == 'wrong_types':
        r['labels'] = {'INBOX': 1}
    return r


def labels_create(mb, obj):
    name = obj.get('name')
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, 'Invalid label name')
    if re.search(r'[\x00-\x1f\x7f]', name) or len(name) > 225:
        raise ApiError(400, 'Invalid label name')
    if mb.label_id(name) is not None or name.upper() in SYSTEM_LABELS:
        raise ApiError(409, 'Label name exists or conflicts')
    l = mb.add_label(name)
    for k in ('messageListVisibility', 'labelListVisibility'):
        if isinstance(obj.get(k), str):
            l[k] = obj[k]
    return l


ROUTES = [
    ('GET', r'/gmail/v1/users/([^/]+)/profile', 'getProfile'),
    ('GET', r'/gmail/v1/users/([^/]+)/messages', 'messages.list'),
    ('POST', r'/gmail/v1/users/([^/]+)/messages/send', 'messages.send'),
    ('POST', r'/upload/gmail/v1/users/([^/]+)/messages/send',
     'messages.send'),
    ('POST', r'/gmail/v1/users/([^/]+)/messages/batchModify',
     'messages.batchModify'),
    ('POST', r'/gmail/v1/users/([^/]+)/messages/([^/]+)/modify',
     'messages.modify'),
    ('GET', r'/gmail/v1/users/([^/]+)/messages/([^/]+)', 'messages.get'),
    ('DELETE', r'/gmail/v1/users/([^/]+)/messages/([^/]+)',
     'messages.delete'),
    ('GET', r'/gmail/v1/users/([^/]+)/history', 'history.list'),
    ('GET', r'/gmail/v1/users/([^/]+)/labels', 'labels.list'),
    ('POST', r'/gmail/v1/users/([^/]+)/labels', 'labels.create'),
]


def required_scopes(method, q):
    if method == 'messages.get':
        if one(q, 'format', 'full') in ('raw', 'full'):
            return FULL_READ, ("Metadata scope doesn't allow format %s"
                               % one(q, 'format', 'full').upper())
        return READ, None
    if method == 'messages.list':
        if one(q, 'q'):
            return FULL_READ, "Metadata scope does not support 'q' parameter"
        return READ, None
    return {'getProfile': READ, 'history.list': READ,
            'messages.send': SEND, 'messages.modify': MODIFY,
            'messages.batchModify': MODIFY, 'messages.delete': DELETE,
            'labels.list': LABELS_READ,
            'labels.create': LABELS_WRITE}[method], None


def api(verb, target, headers, body, ctx):
    """One API call -> (status, [(header, value)], body bytes or None for
    'close the connection').  ctx['method'], ctx['user'], ctx['units'] are
    filled in for the log."""
    u = urllib.parse.urlsplit(target)
    path = urllib.parse.unquote(u.path)
    q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
    try:
        for rv, rx, method in ROUTES:
            mt = re.fullmatch(rx, u.path)
            if mt and rv == verb:
                break
        else:
            raise ApiError(404, 'Not Found: %s %s' % (verb, path[:100]))
        ctx['method'] = method
        with LOCK:
            STATS['requests'][method] += 1
        user, scopes = authenticate(headers.get('Authorization'))
        ctx['user'] = user
        uid = urllib.parse.unquote(mt.group(1))
        if uid != 'me' and uid.lower() != user:
            raise ApiError(403, 'Delegation denied for %s' % user, 'forbidden')
        allowed, msg = required_scopes(method, q)
        if not (scopes & allowed) and msg and scopes & READ:
            need(scopes, allowed, msg)
        need(scopes, allowed)
        mb = mailbox(user)
        ctx['units'] = charge(mb, method)
        fault = take_fault(method)
        if fault in ('backend', 'unavailable'):
            code = 500 if fault == 'backend' else 503
            raise ApiError(code, 'Backend Error', 'backendError')
        if fault == 'close':
            return 0, [], None
        if fault == 'rate':
            raise ApiError(429, 'Rate Limit Exceeded', 'rateLimitExceeded',
                           'usageLimits', [('Retry-After', '1')])
        if fault == 'gone' and method == 'messages.get':
            with LOCK:
                if urllib.parse.unquote(mt.group(2)) in mb.msgs:
                    mb.delete(urllib.parse.unquote(mt.group(2)))
        with LOCK:
            st, obj = dispatch(method, mb, mt, q, headers, body, scopes,
                               fault)
        if fault == 'malformed':
            return 200, [('Content-Type', 'application/json; charset=UTF-8')], \
                json.dumps(obj)[:40].encode() + b'\x00,,{'
        if fault == 'huge':
            obj = dict(obj) if isinstance(obj, dict) else {'v': obj}
            obj['padding'] = 'x' * (10 << 20)
        if obj is None:
            return st, [], b''
        return st, [('Content-Type', 'application/json; charset=UTF-8')], \
            json.dumps(obj, indent=1).encode()
    except ApiError as e:
        return e.code, [('Content-Type', 'application/json; charset=UTF-8')] \
            + e.headers, json.dumps(e.body(), indent=1).encode()


def dispatch(method, mb, mt, q, headers, body, scopes, fault):
    if method == 'getProfile':
        return 200, {'emailAddress': mb.user,
                     'messagesTotal': len(mb.msgs),
                     'threadsTotal': len({m.thread_id
                                          for m in mb.msgs.values()}),
                     'historyId': str(mb.history_id)}
    if method == 'messages.list':
        return 200, messages_list(mb, q, scopes, fault)
    if method == 'messages.get':
        return 200, messages_get(mb, urllib.parse.unquote(mt.group(2)), q,
                                 scopes, fault)
    if method == 'messages.delete':
        mb.delete(urllib.parse.unquote(mt.group(2)))
        return 204, None
    if method == 'messages.send':
        ct = headers.get('Content-Type', '').split(';')[0].strip().lower()
        if ct == 'message/rfc822':
            return 200, messages_send(mb, body, None)
        obj = json_body(body)
        return 200, messages_send(mb, unb64url(obj.get('raw', '')),
                                  obj.get('threadId'))
    if method == 'messages.modify':
        obj = json_body(body)
        m = mb.get(urllib.parse.unquote(mt.group(2)))
        mb.modify(m, str_list(obj, 'addLabelIds'),
                  str_list(obj, 'removeLabelIds'))
        return 200, m.with_labels()
    if method == 'messages.batchModify':
        obj = json_body(body)
        ids = str_list(obj, 'ids')
        if len(ids) > 1000:
            raise ApiError(400, 'Too many ids (at most 1000)')
        add, rem = str_list(obj, 'addLabelIds'), str_list(obj, 'removeLabelIds')
        ms = [mb.get(i) for i in ids]
        for m in ms:
            mb.modify(m, add, rem)
        return 204, None
    if method == 'history.list':
        return 200, history_list(mb, q, fault)
    if method == 'labels.list':
        return 200, labels_list(mb, fault)
    if method == 'labels.create':
        return 200, labels_create(mb, json_body(body))
    raise ApiError(404, 'Not Found')


# ---- batch -------------------------------------------------------------

def split_http(data, start_line=True):
    """bytes of an HTTP message (or, without start_line, of a MIME part)
    -> (first line, headers dict, body)."""
    data = data.lstrip(b'\r\n')
    m = re.search(rb'\r?\n\r?\n', data)
    head, body = (data[:m.start()], data[m.end():]) if m else (data, b'')
    lines = re.split(rb'\r?\n', head.strip(b'\r\n'))
    if not start_line:
        lines.insert(0, b'')
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.decode('latin-1').partition(':')
        hdrs[k.strip().title()] = v.strip()
    return lines[0].decode('latin-1'), hdrs, body


def batch(headers, body):
    ct = headers.get('Content-Type', '')
    mb_ = re.search(r'boundary="?([^";]+)"?', ct)
    if not ct.lower().startswith('multipart/mixed') or not mb_:
        raise ApiError(400, 'Batch request: Content-Type must be '
                       'multipart/mixed with a boundary')
    bnd = mb_.group(1).encode()
    chunks = re.split(rb'(?:^|\r?\n)--' + re.escape(bnd) + rb'(?:--)?[ \t]*'
                      rb'(?:\r?\n|$)', body)
    parts = [c for c in chunks[1:] if c.strip()]
    if not parts:
        raise ApiError(400, 'Batch request contains no parts')
    if len(parts) > 100:
        raise ApiError(400, 'Too many requests in batch (%d); at most 100 '
                       'are allowed' % len(parts))
    out_b = 'batch_%016x' % RNG.getrandbits(64)
    out = []
    for i, p in enumerate(parts):
        _, ph, inner = split_http(p, False)
        cid = ph.get('Content-Id', '').strip()
        cid = cid[1:-1] if cid.startswith('<') and cid.endswith('>') else cid
        line, ih, ibody = split_http(inner)
        if 'Authorization' not in ih and 'Authorization' in headers:
            ih['Authorization'] = headers['Authorization']
        w = line.split()
        ctx = {'method': None, 'user': None, 'units': 0}
        if not ph.get('Content-Type', '').lower().startswith(
                'application/http') or \
                len(w) < 2:
            e = ApiError(400, 'Each batch part must be application/http '
                         'with a request line')
            st, hh, rb = e.code, [('Content-Type', 'application/json; '
                                   'charset=UTF-8')], json.dumps(e.body()).encode()
        else:
            st, hh, rb = api(w[0].upper(), w[1], ih, ibody, ctx)
            if rb is None:      # 'close' inside a batch: the part is lost
                st, hh, rb = 500, [], b''
        logline('BATCH-PART', w[1] if len(w) > 1 else '?', ctx, st)
        resp = 'HTTP/1.1 %d %s\r\n' % (st, PHRASES.get(st, 'Status'))
        for k, v in hh:
            resp += '%s: %s\r\n' % (k, v)
        resp += 'Content-Length: %d\r\n\r\n' % len(rb)
        hdr = 'Content-Type: application/http\r\n'
        if cid:
            hdr += 'Content-ID: <response-%s>\r\n' % cid
        out.append(('--%s\r\n%s\r\n' % (out_b, hdr)).encode() +
                   resp.encode() + rb + b'\r\n')
    out.append(('--%s--\r\n' % out_b).encode())
    return 200, [('Content-Type', 'multipart/mixed; boundary=%s' % out_b)], \
        b''.join(out)


# ---- control API -------------------------------------------------------

def control(verb, target, body):
    u = urllib.parse.urlsplit(target)
    q = urllib.parse.parse_qs(u.query)
    p = u.path
    with LOCK:
        if verb == 'GET' and p == '/_fake/stats':
            return {k: dict(v) if isinstance(v, collections.Counter) else v
                    for k, v in STATS.items()} | {
                'users': {n: {'messages': len(mb.msgs),
                              'historyId': str(mb.history_id),
                              'floor': str(mb.floor)}
                          for n, mb in MAILBOXES.items()}}
        if verb != 'POST':
            raise ApiError(404, 'Not Found')
        if p == '/_fake/deliver':
            if not body.strip():
                raise ApiError(400, '/_fake/deliver: the body must be the '
                               'raw message')
            mb = mailbox(one(q, 'user') or default_user())
            labels = (one(q, 'labels') or 'INBOX,UNREAD').split(',')
            for l in labels:
                if l not in mb.labels:
                    raise ApiError(400, 'Invalid label: %s' % l)
            m = mb.deliver(body, labels)
            return {'id': m.id, 'threadId': m.thread_id,
                    'historyId': str(m.history_id)}
        obj = json_body(body)
        mb = mailbox(obj.get('user') or default_user())
        if p == '/_fake/delete':
            mb.delete(obj.get('id'))
            return {'historyId': str(mb.history_id)}
        if p == '/_fake/label':
            m = mb.get(obj.get('id'))
            mb.modify(m, str_list(obj, 'add'), str_list(obj, 'remove'))
            return m.resource('minimal')
        if p == '/_fake/quota':
            if not isinstance(obj.get('per_minute', 0), int) or \
                    obj.get('error', '429') not in ('429', '403', 429, 403) \
                    or not isinstance(obj.get('retry_after', 0),
                                      (int, type(None))):
                raise ApiError(400, '/_fake/quota: per_minute and '
                               'retry_after are integers, error 429 or 403')
            for k in ('per_minute', 'error', 'retry_after'):
                if k in obj:
                    QUOTA[k] = str(obj[k]) if k == 'error' else obj[k]
            if obj.get('reset'):
                for b in MAILBOXES.values():
                    b.quota.clear()
            return dict(QUOTA)
        if p == '/_fake/fault':
            if obj.get('clear'):
                FAULTS.clear()
            else:
                if not isinstance(obj.get('count', 1), int):
                    raise ApiError(400, '/_fake/fault: count is an integer')
                add_fault(obj.get('kind'), obj.get('count', 1),
                          obj.get('method'))
            return {'faults': FAULTS}
        if p == '/_fake/history':
            if obj.get('expire'):
                mb.expire(0)
            elif isinstance(obj.get('keep'), int) and obj['keep'] >= 0:
                mb.expire(obj['keep'])
            else:
                raise ApiError(400, '/_fake/history: "expire": true or '
                               '"keep": N expected')
            return {'historyId': str(mb.history_id), 'floor': str(mb.floor)}
    raise ApiError(404, 'Not Found')


def default_user():
    with LOCK:
        if not MAILBOXES:
            raise ApiError(400, 'no mailbox: give "user"')
        return next(iter(MAILBOXES))


# ---- HTTP --------------------------------------------------------------

def logline(verb, path, ctx, status):
    if LOGF is None:
        return
    with LOCK:
        LOGF.write(json.dumps({'t': time.time(), 'method': verb,
                               'path': path.split('?')[0],
                               'api': ctx.get('method'),
                               'user': ctx.get('user'), 'status': status,
                               'units': ctx.get('units', 0)}) + '\n')


class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, OSError):
            self.close_connection = True

    def send(self, code, hdrs, body):
        self.send_response(code, PHRASES.get(code))
        for k, v in hdrs:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def run(self):
        n = self.headers.get('Content-Length')
        try:
            n = int(n or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            e = ApiError(413, 'Request body too large or bad Content-Length')
            return self.send(413, [('Content-Type', 'application/json')],
                             json.dumps(e.body()).encode())
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            body = self.read_chunked()
            if body is None:
                self.close_connection = True
                return
        else:
            body = self.rfile.read(n) if n else b''
        hdrs = {k.title(): v for k, v in self.headers.items()}
        path = urllib.parse.urlsplit(self.path).path
        ctx = {'method': None, 'user': None, 'units': 0}
        if path.startswith('/_fake/'):
            try:
                obj = control(self.command, self.path, body)
                st, hh, rb = 200, [('Content-Type', 'application/json')], \
                    json.dumps(obj).encode()
            except ApiError as e:
                st, hh, rb = e.code, [('Content-Type', 'application/json')], \
                    json.dumps(e.body()).encode()
            return self.send(st, hh, rb)
        if path == '/batch/gmail/v1' and self.command == 'POST':
            try:
                st, hh, rb = batch(hdrs, body)
            except ApiError as e:
                st, hh, rb = e.code, [('Content-Type', 'application/json; '
                                       'charset=UTF-8')], \
                    json.dumps(e.body()).encode()
            ctx['method'] = 'batch'
        else:
            st, hh, rb = api(self.command, self.path, hdrs, body, ctx)
        with LOCK:
            STATS['status'][str(st)] += 1
            STATS['http'][ctx['method'] or '?'] += 1
        logline(self.command, self.path, ctx, st)
        if rb is None:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.send(st, hh, rb)

    def read_chunked(self):
        out = []
        total = 0
        while True:
            ln = self.rfile.readline(1024)
            try:
                size = int(ln.split(b';')[0].strip(), 16)
            except ValueError:
                return None
            total += size
            if total > MAX_BODY:
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b'\r\n', b'\n', b''):
                    pass
                return b''.join(out)
            out.append(self.rfile.read(size))
            self.rfile.readline(16)

    def guarded(self):
        try:
            self.run()
        except (ConnectionError, ssl.SSLError):
            raise
        except Exception:
            # a bug in the fake: say so on stderr and answer 500, do not
            # let the test see a silently dropped connection
            import traceback
            traceback.print_exc()
            self.close_connection = True
            e = ApiError(500, 'fakegmail internal error (see its stderr)')
            try:
                self.send(500, [('Content-Type', 'application/json')],
                          json.dumps(e.body()).encode())
            except OSError:
                pass

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = guarded


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    ctx = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ctx is not None:
            # handshake in the handler thread, not in the accept loop
            sock = self.ctx.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass


def watchdog(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.5)


def main():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    for spec in ARGS.mailbox:
        user, _, path = spec.partition('=')
        if not user or (path and not os.path.exists(path)):
            sys.exit('fakegmail: --mailbox %r: USER=PATH with an existing '
                     'PATH expected' % spec)
        load(user, path)
    for spec in ARGS.fault:
        kind, _, rest = spec.partition(':')
        cnt, _, meth = rest.partition(':')
        try:
            add_fault(kind, int(cnt or 1), meth or None)
        except (ApiError, ValueError) as e:
            sys.exit('fakegmail: --fault %r: %s' % (spec, e))
    srv = Server(('127.0.0.1', ARGS.port), H)
    if ARGS.cert:
        srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.ctx.load_cert_chain(ARGS.cert, ARGS.key)
    threading.Thread(target=watchdog, args=(os.getppid(),),
                     daemon=True).start()
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except (SystemExit, KeyboardInterrupt):
        pass
    srv.server_close()


if __name__ == '__main__':
    main()
