"""An HTTP server for readiness and liveness tests: ``python httpkid.py ANSWERS`` serves on
$PORT; ``GET /live`` is answered ANSWERS times, then every later one hangs (a deadlocked
server that still accepts connections); any other path is answered 200."""

from __future__ import annotations

import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = int(sys.argv[1])
answered = 0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        global answered
        if self.path == "/live":
            answered += 1
            if answered > ANSWERS:
                print("hanging", flush=True)
                time.sleep(3600)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
server.daemon_threads = True
print("serving", flush=True)
server.serve_forever()
