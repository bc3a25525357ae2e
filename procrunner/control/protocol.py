"""The control protocol: one JSON object per line each way (kept light: clients import it).

The server greets with ``{"procrunner": VERSION, "protocol": 1, "app": ROOT, "pid": PID}``.
A request is ``{"id": ANY, "command": NAME, ...arguments}``; its reply is
``{"id": ANY, "ok": true, "result": {...}}`` or ``{"id": ANY, "ok": false, "error": TEXT}``.
After ``events`` or ``logs`` (with ``follow``), the server goes on sending notices,
``{"event": NAME, "time": UNIX_TIME, ...}``, until the client closes the connection.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL = 1
MAX_REQUEST = 64 * 1024  # bytes in one request line


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"
