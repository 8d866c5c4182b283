#!/usr/bin/python3
"""Wait until a test Dovecot greets on every port.
usage: dcwait.py DIR [TIMEOUT_S] [MASTER_PID]
Reads DIR/env. Readiness = greeting received (the master binds the ports at
once, but login processes greet only when auth is up). TLS ports are checked
with a full TLS handshake (not verified). Exits 0 when ready, 1 on
timeout, 2 if MASTER_PID died. Prints nothing on success."""
import os, re, socket, ssl, sys, time

d = sys.argv[1]
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 10
pid = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
env = dict(re.findall(r"^(DC_\w+)='?([^'\n]*)'?$", open(os.path.join(d, 'env')).read(), re.M))
checks = {
    int(env['DC_IMAP_PORT']): (False, b'* OK'),
    int(env['DC_IMAPS_PORT']): (True, b'* OK'),
    int(env['DC_POP3_PORT']): (False, b'+OK'),
    int(env['DC_POP3S_PORT']): (True, b'+OK'),
    int(env['DC_LMTP_PORT']): (False, b'220'),
    int(env['DC_SUBMISSION_PORT']): (False, b'220'),
}
# readiness only: don't verify (the instance may present the wrong-name cert)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE

def alive(p):
    try:
        with open('/proc/%d/status' % p) as f:
            return not re.search(r'^State:\s*Z', f.read(), re.M)
    except OSError:
        return False

t0 = time.monotonic(); deadline = t0 + timeout
pending = dict(checks)
while pending and time.monotonic() < deadline:
    for port, (tls, want) in list(pending.items()):
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=2) as s:
                if tls:
                    s = ctx.wrap_socket(s, server_hostname='127.0.0.1')
                if s.makefile('rb').readline().startswith(want):
                    del pending[port]
                s.close()
        except (OSError, ssl.SSLError):
            pass
    if pending:
        if pid and not alive(pid):
            print('dcwait: master %d exited' % pid, file=sys.stderr)
            sys.exit(2)
        time.sleep(0.02)
if pending:
    print('dcwait: NOT ready after %.1fs, ports %s' % (time.monotonic() - t0, sorted(pending)),
          file=sys.stderr)
    sys.exit(1)
if os.environ.get('DC_VERBOSE'):
    print('dcwait: ready %.3fs' % (time.monotonic() - t0), file=sys.stderr)
