#!/usr/bin/python3
"""Fake OAuth2 authorization server for tests, on 127.0.0.1 (stdlib only).

  POST /token      RFC 6749 token endpoint: grant_type refresh_token,
                   authorization_code (PKCE S256 checked against the stored
                   challenge) and urn:ietf:params:oauth:grant-type:device_code
  POST /device     RFC 8628 device authorization
  GET  /authorize  authorization endpoint: answers 302 to redirect_uri with
                   code and state at once (the user "approves" instantly)
  POST /control    JSON object: changes knobs at run time (same names as the
                   options below, with '_' for '-')

Access tokens are HS256 JWTs (claims sub, email, iat, nbf, exp, and scope
when --scope is given, for tools/fakegmail.py) signed with
the raw secret in SECRET_FILE: Dovecot's oauth2 passdb accepts them with
introspection_mode=local (tests/integ/lib/dovecot.sh, DIR/keys/secret.raw).

Every request is appended to the --log file as one JSON line:
  {"t": <unix time, float>, "method", "path", "grant_type", "client_auth":
   "basic"|"body"|"none", "client_id", "status"}
Tokens, codes and secrets are never logged.

The first line on stdout is the port.  Stops on SIGTERM, and by itself when
its parent process goes away (a crashed test leaves nothing behind).

usage: fake_idp.py --secret-file F [--log F] [options]
"""
import argparse, base64, hashlib, hmac, json, os, re, secrets, signal, sys
import threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument('--secret-file', required=True)
ap.add_argument('--log')
ap.add_argument('--port', type=int, default=0)
ap.add_argument('--user', default='alice@example.test',
                help='user for device and authorization-code grants')
ap.add_argument('--client', action='append', default=[],
                help='ID:SECRET (confidential) or ID: (public); default '
                     'test-client:test-secret and public-client:')
ap.add_argument('--refresh', action='append', default=[],
                help='TOKEN=USER, a valid refresh token (default '
                     'refresh-alice, refresh-bob)')
ap.add_argument('--revoke', action='append', default=[],
                help='refresh token answered with invalid_grant')
ap.add_argument('--rotate', action='store_true',
                help='issue a new refresh token on every refresh')
ap.add_argument('--lifetime', type=int, default=3600)
ap.add_argument('--scope',
                help='space-separated scopes: put in the access token as a '
                     '"scope" claim and in the token response (the fake '
                     'Gmail server, tools/fakegmail.py, checks them)')
ap.add_argument('--fail', type=int, default=0,
                help='the next N /token and /device requests fail')
ap.add_argument('--fail-status', type=int, default=503)
ap.add_argument('--malformed', action='store_true',
                help='/token answers 200 with a body that is not JSON')
ap.add_argument('--huge', action='store_true',
                help='/token answers 200 with a 100 KiB JSON body')
ap.add_argument('--no-access-token', action='store_true',
                help='/token answers 200 JSON without access_token')
ap.add_argument('--interval', type=int, default=1,
                help='device polling interval the IdP announces')
ap.add_argument('--pending', type=int, default=0,
                help='device polls answered authorization_pending first')
ap.add_argument('--slow-down', type=int, default=0,
                help='then this many slow_down answers')
ap.add_argument('--deny', action='store_true',
                help='device polls (after pending/slow_down) and '
                     '/authorize answer access_denied')
ap.add_argument('--device-expires', type=int, default=600)
ap.add_argument('--wrong-state', action='store_true',
                help='/authorize redirects with a state that does not match')
ARGS = ap.parse_args()

SECRET = open(ARGS.secret_file, 'rb').read()
LOCK = threading.Lock()
LOGF = open(ARGS.log, 'a', buffering=1) if ARGS.log else None

CLIENTS = {}
for c in ARGS.client or ['test-client:test-secret', 'public-client:']:
    cid, _, sec = c.partition(':')
    CLIENTS[cid] = sec or None
REFRESH = dict(r.split('=', 1) for r in ARGS.refresh) or {
    'refresh-alice': 'alice@example.test', 'refresh-bob': 'bob@example.test'}
REVOKED = set(ARGS.revoke)
KNOBS = {k: getattr(ARGS, k) for k in (
    'rotate', 'lifetime', 'fail', 'fail_status', 'malformed', 'huge',
    'no_access_token', 'interval', 'pending', 'slow_down', 'deny',
    'device_expires', 'wrong_state', 'user', 'scope')}
DEVICES = {}   # device_code -> {'polls': n, 'expires': t}
CODES = {}     # code -> {'challenge', 'method', 'redirect_uri', 'client_id', 'user'}


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=').decode()


def mint(user, lifetime):
    now = int(time.time())
    claims = {'sub': user, 'email': user, 'iat': now, 'nbf': now,
              'exp': now + lifetime}
    if KNOBS['scope']:
        claims['scope'] = KNOBS['scope']
    si = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode()) + '.' + \
        b64url(json.dumps(claims).encode())
    return si + '.' + b64url(hmac.new(SECRET, si.encode(),
                                      hashlib.sha256).digest())


class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def record(self, status, grant_type=None):
        if LOGF is None:
            return
        ent = {'t': time.time(), 'method': self.command,
               'path': urllib.parse.urlparse(self.path).path,
               'grant_type': grant_type, 'client_auth': self.client_auth,
               'client_id': self.client_id, 'status': status}
        with LOCK:
            LOGF.write(json.dumps(ent) + '\n')

    def send(self, code, body, ctype='application/json', extra=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        body = body.encode()
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Cache-Control', 'no-store')
        for k, v in extra:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reply(self, code, obj, grant_type=None, extra=()):
        self.record(code, grant_type)
        self.send(code, obj, extra=extra)

    def raw_body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n).decode('utf-8', 'replace')

    @staticmethod
    def form(raw):
        return {k: v[0] for k, v in urllib.parse.parse_qs(
            raw, keep_blank_values=True).items()}

    def authenticate(self, f):
        """RFC 6749 2.3.1: Basic (form-urlencoded parts) or body."""
        a = self.headers.get('Authorization', '')
        self.client_auth, self.client_id = 'none', f.get('client_id')
        sec = f.get('client_secret')
        if a.startswith('Basic '):
            try:
                raw = base64.b64decode(a[6:], validate=True).decode()
            except Exception:
                return False
            cid, _, sec = raw.partition(':')
            self.client_auth = 'basic'
            self.client_id = urllib.parse.unquote_plus(cid)
            sec = urllib.parse.unquote_plus(sec)
        elif sec is not None:
            self.client_auth = 'body'
        if self.client_id not in CLIENTS:
            return False
        want = CLIENTS[self.client_id]
        if want is None:
            return True
        return sec is not None and hmac.compare_digest(want, sec)

    def take_failure(self):
        with LOCK:
            if KNOBS['fail'] > 0:
                KNOBS['fail'] -= 1
                return True
        return False

    def issue(self, user, gt, refresh=None):
        if KNOBS['malformed']:
            self.record(200, gt)
            return self.send(200, '<html>not json', 'text/html')
        if KNOBS['huge']:
            return self.reply(200, {'access_token': 'x', 'token_type': 'Bearer',
                                    'pad': 'p' * 100 * 1024}, gt)
        if KNOBS['no_access_token']:
            return self.reply(200, {'token_type': 'Bearer'}, gt)
        body = {'access_token': mint(user, KNOBS['lifetime']),
                'token_type': 'Bearer', 'expires_in': KNOBS['lifetime'],
                'scope': KNOBS['scope'] or 'mail'}
        if refresh is not None:
            body['refresh_token'] = refresh
        self.reply(200, body, gt)

    def do_POST(self):
        self.client_auth, self.client_id = 'none', None
        p = urllib.parse.urlparse(self.path).path
        raw = self.raw_body()
        if p == '/control':
            return self.control(raw)
        f = self.form(raw)
        if p not in ('/token', '/device'):
            return self.reply(404, {'error': 'not_found'})
        gt = f.get('grant_type') if p == '/token' else None
        ok = self.authenticate(f)
        if self.take_failure():
            return self.reply(KNOBS['fail_status'],
                              {'error': 'server_error'}, gt)
        if not ok:
            return self.reply(401, {'error': 'invalid_client',
                                    'error_description': 'unknown client '
                                    'or bad secret'}, gt,
                              [('WWW-Authenticate', 'Basic')])
        if p == '/device':
            return self.device(f)
        if gt == 'refresh_token':
            return self.refresh(f, gt)
        if gt == 'authorization_code':
            return self.auth_code(f, gt)
        if gt == 'urn:ietf:params:oauth:grant-type:device_code':
            return self.device_poll(f, gt)
        self.reply(400, {'error': 'unsupported_grant_type'}, gt)

    def refresh(self, f, gt):
        rt = f.get('refresh_token')
        with LOCK:
            user = REFRESH.get(rt) if rt not in REVOKED else None
            if user and KNOBS['rotate']:
                del REFRESH[rt]
                rt = 'refresh-' + secrets.token_urlsafe(12)
                REFRESH[rt] = user
        if not user:
            return self.reply(400, {'error': 'invalid_grant',
                                    'error_description': 'refresh token '
                                    'revoked or expired'}, gt)
        self.issue(user, gt, rt)

    def auth_code(self, f, gt):
        with LOCK:
            c = CODES.pop(f.get('code', ''), None)   # single use
        v = f.get('code_verifier', '')
        if (c is None or c['client_id'] != self.client_id or
                c['redirect_uri'] != f.get('redirect_uri') or
                not re.fullmatch(r'[A-Za-z0-9._~-]{43,128}', v) or
                b64url(hashlib.sha256(v.encode()).digest()) != c['challenge']):
            return self.reply(400, {'error': 'invalid_grant',
                                    'error_description': 'bad code, '
                                    'redirect_uri or code_verifier'}, gt)
        self.issue(c['user'], gt, 'refresh-' + secrets.token_urlsafe(12))

    def device(self, f):
        dc = secrets.token_urlsafe(24)
        with LOCK:
            DEVICES[dc] = {'polls': 0, 'client_id': self.client_id,
                           'expires': time.time() + KNOBS['device_expires']}
        host, port = self.server.server_address[:2]
        uri = 'http://%s:%d/activate' % (host, port)
        self.reply(200, {'device_code': dc, 'user_code': 'WDJB-MJHT',
                         'verification_uri': uri,
                         'verification_uri_complete': uri + '?user_code=WDJB-MJHT',
                         'expires_in': KNOBS['device_expires'],
                         'interval': KNOBS['interval']})

    def device_poll(self, f, gt):
        with LOCK:
            d = DEVICES.get(f.get('device_code', ''))
            if d is not None:
                d['polls'] += 1
                n = d['polls']
        if d is None or d['client_id'] != self.client_id:
            return self.reply(400, {'error': 'invalid_grant'}, gt)
        if time.time() > d['expires']:
            return self.reply(400, {'error': 'expired_token'}, gt)
        if n <= KNOBS['pending']:
            return self.reply(400, {'error': 'authorization_pending'}, gt)
        if n <= KNOBS['pending'] + KNOBS['slow_down']:
            return self.reply(400, {'error': 'slow_down'}, gt)
        if KNOBS['deny']:
            return self.reply(400, {'error': 'access_denied',
                                    'error_description': 'the user said no'},
                              gt)
        with LOCK:
            DEVICES.pop(f.get('device_code'), None)
        self.issue(KNOBS['user'], gt, 'refresh-' + secrets.token_urlsafe(12))

    def control(self, raw):
        n = 0
        try:
            body = json.loads(raw or '{}')
        except Exception:
            body = None
        if not isinstance(body, dict):
            return self.reply(400, {'error': 'bad control body'})
        with LOCK:
            for k, v in body.items():
                if k in KNOBS:
                    KNOBS[k] = v
                    n += 1
                elif k == 'revoke':
                    REVOKED.add(v)
                    n += 1
        self.reply(200, {'changed': n})

    def do_GET(self):
        self.client_auth, self.client_id = 'none', None
        u = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        if u.path != '/authorize':
            return self.reply(404, {'error': 'not_found'})
        self.client_id = q.get('client_id')
        ru = q.get('redirect_uri', '')
        pu = urllib.parse.urlparse(ru)
        # Only loopback redirects (RFC 8252 7.3) for a known client.
        if (self.client_id not in CLIENTS or pu.scheme != 'http' or
                pu.hostname != '127.0.0.1'):
            return self.reply(400, {'error': 'invalid_request',
                                    'error_description': 'bad client_id or '
                                    'redirect_uri'})
        state = q.get('state', '')
        if KNOBS['wrong_state']:
            state = 'x' + state
        if q.get('response_type') != 'code':
            params = {'error': 'unsupported_response_type', 'state': state}
        elif q.get('code_challenge_method') != 'S256' or \
                not q.get('code_challenge'):
            params = {'error': 'invalid_request',
                      'error_description': 'PKCE S256 required',
                      'state': state}
        elif KNOBS['deny']:
            params = {'error': 'access_denied', 'state': state}
        else:
            code = secrets.token_urlsafe(24)
            with LOCK:
                CODES[code] = {'challenge': q['code_challenge'],
                               'redirect_uri': ru,
                               'client_id': self.client_id,
                               'user': KNOBS['user']}
            params = {'code': code, 'state': state}
        sep = '&' if pu.query else '?'
        loc = ru + sep + urllib.parse.urlencode(params)
        self.record(302)
        self.send(302, '', 'text/plain', [('Location', loc)])


def watchdog(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.5)


def main():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(('127.0.0.1', ARGS.port), H)
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
