"""The engine tests' app: answers with who it is, what its scratch folder holds and the
greeting from its environment; GET /mark leaves a file in the scratch folder."""

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        scratch = os.environ["PROCRUNNER_SCRATCH"]
        if self.path == "/mark":
            Path(scratch, "mark").touch()
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                           "user": os.getuid(), "greeting": os.environ.get("GREETING"),
                           "scratch": sorted(os.listdir(scratch))}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


HTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])),
           Handler).serve_forever()
