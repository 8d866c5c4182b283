#!/usr/bin/python3
"""An HTTPS server on 127.0.0.1 serving documents by Host and path, for the
discovery tests (clients reach it with CURLOPT_CONNECT_TO, so the Host
header and SNI carry the real name).  Standard library only.

usage: httpsfixture.py --cert PEM --key PEM --routes FILE [--port 0] [--log FILE]

The first line on stdout is the port.  Exits 0 on SIGTERM.

FILE is JSON: {"HOST/PATH": ROUTE, ...} (PATH without the query), ROUTE one of
  {"file": "PATH"}                    200 with the file's bytes (Content-Type
                                      from "type", default text/html: clients
                                      must not care)
  {"redirect": "URL", "status": 302}  redirect
  {"huge": BYTES, "length": true|false}
                                      a document of BYTES bytes, streamed; with
                                      "length" the size is announced in
                                      Content-Length, else the body ends at close
  {"status": N}                       empty answer with that status
Anything else: 404.  Each request is logged as "HOST PATH?QUERY".
"""
import argparse
import http.server
import json
import os
import signal
import socketserver
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        path, _, _query = self.path.partition("?")
        if self.server.log:
            self.server.log.write("%s %s\n" % (host, self.path))
        route = self.server.routes.get(host + path)
        try:
            self.serve(route)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def serve(self, route):
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "redirect" in route:
            self.send_response(route.get("status", 302))
            self.send_header("Location", route["redirect"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "file" in route:
            with open(route["file"], "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", route.get("type", "text/html"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if "huge" in route:
            n = int(route["huge"])
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            if route.get("length"):
                self.send_header("Content-Length", str(n))
            self.end_headers()
            head = b'<?xml version="1.0"?>\n<clientConfig version="1.1">\n'
            self.wfile.write(head)
            chunk = b"<!-- padding padding padding padding padding -->\n" * 1024
            sent = len(head)
            while sent < n:
                part = chunk[:n - sent]
                self.wfile.write(part)
                sent += len(part)
            return
        self.send_response(int(route.get("status", 500)))
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--routes", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.ctx.load_cert_chain(a.cert, a.key)
    with open(a.routes) as f:
        srv.routes = {k.lower(): v for k, v in json.load(f).items()}
    srv.log = open(a.log, "a", buffering=1) if a.log else None
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
