#!/usr/bin/python3
"""Mint an HS256 JWT the test Dovecot accepts for XOAUTH2/OAUTHBEARER
(oauth2 passdb, introspection_mode=local).
usage: mint.py EMAIL [LIFETIME_S] SECRET_FILE    (negative lifetime = expired)"""
import base64, hashlib, hmac, json, sys, time

def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=').decode()

def mint(email, lifetime, secret):
    now = int(time.time())
    body = {'sub': email, 'email': email, 'iat': now, 'nbf': now, 'exp': now + lifetime}
    if lifetime < 0:
        body['iat'] = body['nbf'] = now + lifetime - 60
    si = b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode()) + '.' + \
        b64url(json.dumps(body).encode())
    return si + '.' + b64url(hmac.new(secret, si.encode(), hashlib.sha256).digest())

if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lifetime = int(sys.argv[2]) if len(sys.argv) > 3 else 3600
    sfile = sys.argv[3] if len(sys.argv) > 3 else sys.argv[2]
    print(mint(sys.argv[1], lifetime, open(sfile, 'rb').read()))
