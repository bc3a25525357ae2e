"""Just enough HTTP/1.1 for the dashboard, on asyncio streams: one request per connection
(the answer closes it), bounded head and body, and responses that carry the page's
security headers. No CORS headers, ever: other origins cannot read anything."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_BODY = 16 * 1024  # bytes of a request body (the page's actions are small JSON objects)

SECURITY_HEADERS = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
     "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


class BadHttp(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request; None when the client closed without sending one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadHttp(HTTPStatus.BAD_REQUEST, "incomplete request") from None
    except asyncio.LimitOverrunError:
        too_large = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        raise BadHttp(too_large, "request head too large") from None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadHttp(HTTPStatus.BAD_REQUEST, "malformed request line")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "0")
    if not length.isdigit():
        raise BadHttp(HTTPStatus.BAD_REQUEST, "bad Content-Length")
    if int(length) > MAX_BODY:
        raise BadHttp(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
    body = await reader.readexactly(int(length))
    target = urlsplit(parts[1])
    return Request(parts[0], target.path, dict(parse_qsl(target.query)), headers, body)


def head(
    status: HTTPStatus, content_type: str, length: int | None, extra: tuple[str, ...] = ()
) -> bytes:
    """The status line and headers; no Content-Length for a stream (``length`` None)."""
    lines = [f"HTTP/1.1 {status.value} {status.phrase}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{name}: {value}" for name, value in SECURITY_HEADERS]
    lines += ["Connection: close", *extra, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def response(
    status: HTTPStatus, body: bytes, content_type: str, extra: tuple[str, ...] = ()
) -> bytes:
    return head(status, content_type, len(body), extra) + body


def refusal(status: HTTPStatus, message: str) -> bytes:
    return response(status, f"{status.value} {status.phrase}: {message}\n".encode(),
                    "text/plain; charset=utf-8")
