"""Who may use the dashboard: loopback only, the right token, and the page's own origin.

- It listens on a loopback address and nothing else; asking for another is an error.
- Every request needs the random token: in the URL (``?token=``), or in the cookie that
  the page's first answer sets (HttpOnly, SameSite=Strict, named after the port, since
  cookies do not tell ports apart).
- The Host header must name the dashboard itself (a DNS-rebinding page sends its own).
- A request that a browser says comes from elsewhere (``Sec-Fetch-Site``, ``Origin`` or
  ``Referer`` naming another origin, another port included) is refused, and a POST must
  be JSON, which a plain cross-site form cannot send.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from procrunner.dashboard.httpd import Request
from procrunner.errors import ProcrunnerError

LOOPBACK = "127.0.0.1"
TOKEN_HEADER = "x-procrunner-token"


def loopback_host(host: str) -> str:
    """The address to bind: ``localhost`` or a loopback address; anything else is refused."""
    if host == "localhost":
        return LOOPBACK
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ProcrunnerError(
            f"refusing to listen on {host!r}: the dashboard can change the formation, so it "
            "only listens on loopback (127.0.0.1, ::1 or localhost); reach it from elsewhere "
            "through an SSH tunnel",
            "--host",
        )
    return str(address)


class Guard:
    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(24)
        self.cookie_name = f"procrunner-dashboard-{port}"
        shown = f"[{host}]" if ":" in host else host
        self.origin = f"http://{shown}:{port}"
        names = {f"{shown}:{port}", f"localhost:{port}"}
        self._hosts = frozenset(names)
        self._origins = frozenset(f"http://{name}" for name in names)

    def cookie(self) -> str:
        return f"Set-Cookie: {self.cookie_name}={self.token}; HttpOnly; SameSite=Strict; Path=/"

    def refusal(self, request: Request) -> str | None:
        """Why the request is refused (403), or None."""
        if request.headers.get("host") not in self._hosts:
            return "this is not the dashboard's host name"
        given = (
            request.query.get("token")
            or request.headers.get(TOKEN_HEADER)
            or request.cookie(self.cookie_name)
            or ""
        )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return "missing or wrong token: open the URL that procrunner printed"
        site = request.headers.get("sec-fetch-site")
        if site not in (None, "same-origin") and not (site == "none" and request.method == "GET"):
            return f"a request from another site ({site})"
        origin = request.headers.get("origin")
        if origin is not None and origin not in self._origins:
            return f"a request from another origin ({origin})"
        referer = request.headers.get("referer")
        if referer is not None and not any(referer.startswith(f"{o}/") for o in self._origins):
            return "a request from another page"
        if request.method == "POST" and not request.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return "an action must be sent as application/json"
        return None
