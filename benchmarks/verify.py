"""Check that a runner relayed every writer line intact.

Writer lines look like ``@@ID:SEQ:xxx...$`` (see writer.py). After a runner's prefix, each
output line must end with exactly one such payload; every writer's SEQs must arrive 1..N in
order. Anything else that carries writer data (a fragment of ``x``s, a payload that is cut,
merged with another or trimmed) is a broken line. A JSON line (``--output json``) holds the
payload as its ``line``, last: its closing ``"}`` is not part of the payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from writer import payload_parts

FRAGMENT = b"xxxxxxxx"


@dataclass(frozen=True)
class Verdict:
    expected: int
    delivered: int  # exact payloads that advanced their writer's sequence
    broken: int  # output lines with writer data that is not one exact payload
    disorder: int  # exact payloads that were not the next SEQ of their writer

    @property
    def missing(self) -> int:
        return self.expected - self.delivered

    @property
    def intact(self) -> bool:
        return self.missing == 0 and self.broken == 0 and self.disorder == 0

    def summary(self) -> str:
        if self.intact:
            return "intact"
        parts = [f"{self.missing} missing", f"{self.broken} broken", f"{self.disorder} disorder"]
        return ", ".join(p for p in parts if not p.startswith("0 "))


def verify(path: Path, ids: list[str], count: int, size: int) -> Verdict:
    """Read a runner's saved stdout and judge the writer lines in it."""
    parts = {i.encode(): tuple(p.encode() for p in payload_parts(size, i)) for i in ids}
    last = dict.fromkeys(parts, 0)
    delivered = broken = disorder = 0
    with path.open("rb") as out:
        for line in out:
            start = line.find(b"@@")
            if start < 0:
                broken += FRAGMENT in line
                continue
            payload = line[start:].rstrip(b"\n").removesuffix(b'"}')
            colon = payload.find(b":", 2)
            wid = payload[2:colon]
            seq_text = payload[colon + 1 : colon + 11]
            if wid not in parts or not seq_text.isdigit():
                broken += 1
                continue
            seq = int(seq_text)
            head, tail = parts[wid]
            if payload != head + seq_text + tail or payload.count(b"@@") != 1:
                broken += 1
            elif seq != last[wid] + 1:
                disorder += 1
                delivered += seq > last[wid]
                last[wid] = max(last[wid], seq)
            else:
                delivered += 1
                last[wid] = seq
    return Verdict(count * len(ids), delivered, broken, disorder)
