"""Output formats (issue 8): JSON lines that give back every byte, log files complete after
chaos, time stamp formats."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import random
import re
import signal
from pathlib import Path
from typing import Any

import pytest
from harness import App
from hypothesis import given, settings
from hypothesis import strategies as st
from test_output import RecordingSink

from procrunner.config.settings import Style
from procrunner.output.printer import MAX_LINE, LineAssembler, Printer
from procrunner.output.text import Clock, Origin, TextFormat

JSON = Style(output="json")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d")


def _reject(value: str) -> Any:
    raise ValueError(f"not strict JSON: {value}")


def strict(raw: bytes) -> dict[str, Any]:
    """One line as a strict parser takes it: UTF-8, no NaN, no lone surrogate."""
    obj = json.loads(raw.decode("utf-8"), parse_constant=_reject)
    assert isinstance(obj, dict)
    for value in obj.values():
        if isinstance(value, str):
            value.encode("utf-8")  # a lone surrogate (from a \\udcxx escape) fails here
    return obj


def rebuild(output: bytes) -> tuple[dict[tuple[str, str], bytes], list[dict[str, Any]]]:
    """Each (instance, stream)'s exact bytes from JSON lines, and every object."""
    streams: dict[tuple[str, str], bytearray] = {}
    objects = []
    for raw in output.splitlines():
        obj = strict(raw)
        objects.append(obj)
        assert ISO.fullmatch(obj["time"]), obj["time"]
        assert datetime.datetime.fromisoformat(obj["time"]).tzinfo is not None
        data = obj["line"].encode() if "line" in obj else base64.b64decode(obj["line_b64"])
        buffer = streams.setdefault((obj["instance"], obj["stream"]), bytearray())
        buffer += data if obj.get("partial") else data + b"\n"
    return {key: bytes(value) for key, value in streams.items()}, objects


def through_json(chunks: list[bytes], stderr: bool = False) -> bytes:
    """Feed chunks through one stream's assembler in JSON mode; the printed bytes."""

    async def go() -> bytes:
        sink = RecordingSink()
        printer = Printer(JSON, lambda _: sink)  # type: ignore[arg-type,return-value]
        assembler = LineAssembler(printer.source("web.1", 3, 0), stderr)
        for chunk in chunks:
            assembler.feed(chunk)
        assembler.flush()
        printer.system("a line of procrunner's own")
        await asyncio.sleep(0)
        return bytes(sink.data)

    return asyncio.run(go())


def awkward_bytes(rng: random.Random) -> bytes:
    """Random binary lines, invalid UTF-8, quotes, backslashes, control bytes, tabs, valid
    non-ASCII, a line longer than MAX_LINE, and a last line without newline."""
    lines = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(200))) for _ in range(300)]
    lines += [b'say "hi" \\o/', b"tab\there\r", b"\x00\x1b[31m\x7f", "héllo ✓".encode()]
    lines += [b"\xff\xfe", b"\xed\xa0\x80", b"plain ascii", b"", b"x" * (MAX_LINE + 12345)]
    rng.shuffle(lines)
    return b"\n".join(lines).replace(b"\n\n\n", b"\n") + b"\nno newline at the end"


def test_json_lines_give_back_every_byte() -> None:
    data = awkward_bytes(random.Random(8))
    step = 65536
    out = through_json([data[i : i + step] for i in range(0, len(data), step)])
    streams, objects = rebuild(out)
    assert streams[("web.1", "stdout")] == data
    assert {(o["instance"], o["incarnation"]) for o in objects if o["stream"] == "stdout"} == {
        ("web.1", 3)
    }
    assert any("line_b64" in o for o in objects)
    assert any(o.get("continued") for o in objects) and any(o.get("partial") for o in objects)
    own = [o for o in objects if o["stream"] == "procrunner"]
    assert own == [
        {"time": own[0]["time"], "instance": "system", "incarnation": None,
         "stream": "procrunner", "line": "a line of procrunner's own"}
    ]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.booleans())
def test_any_chunks_round_trip_through_json(chunks: list[bytes], stderr: bool) -> None:
    streams, _ = rebuild(through_json(chunks, stderr))
    data = b"".join(chunks)
    assert streams.get(("web.1", "stderr" if stderr else "stdout"), b"") == data


def test_a_plain_block_is_framed_whole_and_escapes_what_json_needs() -> None:
    out = through_json([b'a "quoted" \\ line\twith tab\nsecond\n'])
    first, second, _own = out.splitlines()
    assert first.endswith(b'"stream":"stdout","line":"a \\"quoted\\" \\\\ line\\twith tab"}')
    assert strict(second)["line"] == "second"


def test_clock_formats() -> None:
    local = Clock("local")
    assert local.advance() and re.fullmatch(rb"\d\d:\d\d:\d\d", local.text)
    iso = Clock("iso")
    iso.advance()
    assert ISO.fullmatch(iso.text.decode())
    stamp = datetime.datetime.fromisoformat(iso.text.decode())
    assert abs(stamp.timestamp() - datetime.datetime.now().timestamp()) < 5
    now = [100.0]
    relative = Clock("relative", monotonic=lambda: now[0])
    now[0] = 112.3456
    assert relative.advance() and relative.text == b"+12.345"
    assert not relative.advance()
    now[0] = 3700.5
    assert relative.advance() and relative.text == b"+3600.500"


def test_the_log_file_format_has_a_stamp_and_a_mark_but_no_name() -> None:
    clock = Clock("relative", monotonic=lambda: 0.0)
    fmt = TextFormat(clock, names=False, note_mark=b"= ")
    origin = Origin("web.1", 2)
    assert fmt.block(origin, True, b"a\nb\n") == b"+0.000 ! a\n+0.000 ! b\n"
    assert fmt.piece(origin, False, b"rest", True, False) == b"+0.000 |+rest\n"
    assert fmt.note(origin, "web.1#2 started") == b"+0.000 = web.1#2 started\n"


def test_json_output_end_to_end_keeps_stdout_and_stderr_exact(app: App) -> None:
    out = awkward_bytes(random.Random(1))
    err = awkward_bytes(random.Random(2))[:5000] + b"\n"
    app.write("out.bin", "")
    (app.root / "out.bin").write_bytes(out)
    (app.root / "err.bin").write_bytes(err)
    app.procfile("web: cat out.bin; cat err.bin >&2\n")
    run = app.start("--output", "json")
    assert run.finish() == 0
    streams, objects = rebuild(b"".join(run.lines))
    assert streams[("web.1", "stdout")] == out
    assert streams[("web.1", "stderr")] == err
    own = [o for o in objects if o["stream"] == "procrunner"]
    assert own and all(o["instance"] == "system" and o["incarnation"] is None for o in own)
    assert any(o["line"].startswith("web.1#1 started with pid") for o in own)
    assert {o["incarnation"] for o in objects if o["stream"] != "procrunner"} == {1}


WRITER = """\
import os, sys, time
label = os.environ["PROCRUNNER_INCARNATION"].split("/")[-1]
record = open(sys.argv[1] + "." + label, "w", buffering=1)
for n in range(1_000_000):
    sys.stdout.write(f"{label} {n}\\n")
    sys.stdout.flush()
    record.write(f"{n}\\n")  # after the pipe has it: the record never runs ahead
    if n % 5 == 0:
        time.sleep(0.001)
"""


@pytest.mark.slow
def test_log_files_are_complete_and_ordered_after_a_chaos_run(app: App, tmp_path: Path) -> None:
    app.write("writer.py", WRITER)
    records = app.root / "written"
    logs = tmp_path / "logs"
    app.procfile(f"w: exec python3 writer.py {records}\n")
    run = app.start("-m", "w=2", "--restart", "always", "--chaos", "every=0.3s,seed=8",
                    "--log-dir", str(logs), "--timestamp", "iso")  # fmt: skip
    run.wait_for(r"started with pid .*, replacing .* \(chaos\)", count=4, timeout=60)
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert {p.name for p in logs.iterdir()} == {"w.1.log", "w.2.log"}
    assert logs.stat().st_mode & 0o777 == 0o700
    restarted = 0
    for name in ("w.1", "w.2"):
        path = logs / f"{name}.log"
        assert path.stat().st_mode & 0o777 == 0o600
        seen = _incarnations_in(path.read_text(), name)
        restarted += len(seen) - 1
        for number, numbers in seen.items():
            record = records.parent / f"{records.name}.{name}#{number}"
            written = record.read_text().split() if record.exists() else []  # killed early
            assert numbers == list(range(len(numbers))), f"{name}#{number}: lost or disorder"
            assert len(numbers) >= len(written), f"{name}#{number}: lines missing"
    assert restarted >= 4


def _incarnations_in(text: str, name: str) -> dict[int, list[int]]:
    """Per incarnation in a text log file, the numbers it printed, checking that each is
    between its start and end lines."""
    stamp, who = r"\d{4}-\S+ ", re.escape(name)
    seen: dict[int, list[int]] = {}
    current = None
    for line in text.splitlines():
        if start := re.fullmatch(rf"{stamp}= {who}#(\d+) started with pid \d+ at .*", line):
            assert current is None, f"{line!r} before the end of #{current}"
            current = int(start.group(1))
            assert current not in seen
            seen[current] = []
        elif re.fullmatch(rf"{stamp}= {who}#(\d+) ended: .*", line):
            assert current is not None
            current = None
        else:
            match = re.fullmatch(rf"{stamp}\| {who}#(\d+) (\d+)", line)
            assert match and current == int(match.group(1)), line
            seen[current].append(int(match.group(2)))
    assert current is None, "the last incarnation has no end line"
    return seen


def test_timestamp_formats_in_prefixes(app: App) -> None:
    app.procfile("web: echo hello\n")
    patterns = {
        "local": r"\d\d:\d\d:\d\d web\.1  \| hello",
        "iso": ISO.pattern + r" web\.1  \| hello",
        "relative": r"\+\d+\.\d{3} web\.1  \| hello",
    }
    for kind, pattern in patterns.items():
        run = app.start("--timestamp", kind)
        assert run.finish() == 0
        assert re.search(pattern, run.text()), (kind, run.text())
