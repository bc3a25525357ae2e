"""Sizes for people: ``2.1 MB``."""

from __future__ import annotations


def format_bytes(count: int) -> str:
    """Decimal units, as ``ls -h --si`` and most file managers show them."""
    if count < 1000:
        return f"{count} B"
    value = count / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 999.95:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
