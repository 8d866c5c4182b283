"""fakeserver.py -- the TCP server loop shared by the scripted fake servers.

Not a tool: fakeimap.py, hostileimap.py, fakepop3.py and scriptserver.py
import it as a sibling module (a script's own directory is first on sys.path).  Stdlib only.
A tool keeps its protocol; this module does the rest:

  parser(doc, name, choices)
      argparse parser for a tool whose docstring is DOC (first line: the
      description, the rest: the epilog, printed as written), with the
      required option NAME ('--mode', '--scenario') limited to CHOICES
      (None: any value, e.g. scriptserver.py's '--case FILE'), then
      --port N (default 0: the kernel picks) and --log FILE.  The tool adds
      its own options and calls parse_args().

  serve(args, handler, log_errors=())
      Never returns.  Opens args.log for appending when given; SIGTERM and
      SIGINT log "exit on signal N" and exit 0 at once; listens on
      127.0.0.1:args.port (SO_REUSEADDR) and prints the port as the first
      stdout line (flushed).  Each accepted connection gets the next number
      N (1, 2, ...) and a daemon thread that logs "conn N open", runs
      handler(sock, N, args), closes sock and logs "conn N closed".  An
      exception of a class in LOG_ERRORS is logged as "conn N error <repr>";
      any other OSError (the client went away) ends the connection quietly.

  log(msg)
      One line to the --log file, flushed at once, under a lock (threads
      share the file); does nothing without --log.

  LineConn(sock)
      .readline() -> the next line without its CR LF / LF, or None at EOF
      or when 1 MiB arrived without a LF; .send(data) sends all of DATA.
      .s is the socket, .buf what was read but not returned yet.
"""
import argparse, os, signal, socket, threading

_LOCK = threading.Lock()
_LOGF = None


def log(msg):
    if _LOGF:
        with _LOCK:
            _LOGF.write(msg + '\n')
            _LOGF.flush()


def parser(doc, name, choices):
    p = argparse.ArgumentParser(description=doc.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog='\n'.join(doc.split('\n')[1:]))
    p.add_argument(name, required=True, choices=choices)
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--log')
    return p


class LineConn:
    def __init__(self, sock):
        self.s = sock
        self.buf = b''

    def readline(self):
        while b'\n' not in self.buf:
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
            if len(self.buf) > 1 << 20:
                return None
        line, _, self.buf = self.buf.partition(b'\n')
        return line.rstrip(b'\r')

    def send(self, data):
        self.s.sendall(data)


def _connection(sock, n, args, handler, log_errors):
    log('conn %d open' % n)
    try:
        handler(sock, n, args)
    except log_errors as e:
        log('conn %d error %r' % (n, e))
    except OSError:
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass
        log('conn %d closed' % n)


def serve(args, handler, log_errors=()):
    global _LOGF
    if args.log:
        _LOGF = open(args.log, 'a')

    def stop(signum, frame):
        log('exit on signal %d' % signum)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', args.port))
    ls.listen(64)
    print(ls.getsockname()[1], flush=True)
    n = 0
    while True:
        s, _ = ls.accept()
        n += 1
        threading.Thread(target=_connection,
                         args=(s, n, args, handler, log_errors),
                         daemon=True).start()
