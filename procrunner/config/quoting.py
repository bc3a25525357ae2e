"""How an error message quotes a value the user gave: the one place that does it, for every
source (flags, variables, procrunner.yml, .foreman, the Procfile, the formation).

At most ``QUOTE_LIMIT`` characters of a value are shown (escapes count, quotes do not), on
one line, and a cut is visible: ``'aaaa…' (104857600 characters)``. A value can be a 100 MB
YAML scalar; its error line must not be.
"""

from __future__ import annotations

QUOTE_LIMIT = 80
_ELLIPSIS = "…"


def quote(value: object) -> str:
    """``'soon'``, ``true``, ``[1, 2]``: the value as the user wrote it, cut to the limit."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return _quote_text(value)
    shown = repr(value)
    if len(shown) <= QUOTE_LIMIT:
        return shown
    return f"{shown[:QUOTE_LIMIT - 1]}{_ELLIPSIS} ({len(shown)} characters)"


def _quote_text(text: str) -> str:
    head = repr(text[: QUOTE_LIMIT + 1])  # never the repr of all of a huge string
    if len(text) <= QUOTE_LIMIT and len(head) <= QUOTE_LIMIT + 2:  # the quotes are not the value
        return head
    keep = min(len(text), QUOTE_LIMIT)
    while keep > 0 and len(repr(text[:keep])) > QUOTE_LIMIT + 1:  # room for the ellipsis
        keep -= 1
    cut = repr(text[:keep])
    return f"{cut[:-1]}{_ELLIPSIS}{cut[-1]} ({len(text)} characters)"
