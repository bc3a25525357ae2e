"""The output path: line assembly and prefixes (unit), and the real pipe path end to end."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import psutil
import pytest
from harness import App, kid, wait_until

from procrunner.config.settings import Style
from procrunner.output.printer import MAX_LINE, PARTIAL_DELAY, LineAssembler, Printer
from procrunner.output.text import TextFormat


class RecordingSink:
    congested = False
    is_terminal = False

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


def printer(style: Style | None = None) -> tuple[Printer, RecordingSink]:
    sink = RecordingSink()
    made = Printer(style or Style(timestamps=False), lambda _: sink)  # type: ignore[arg-type,return-value]
    made.add_names(["web.1", "worker.12"])
    return made, sink


def feed(chunks: list[bytes], stderr: bool = False, style: Style | None = None) -> bytes:
    async def go() -> bytes:
        out, sink = printer(style)
        assembler = LineAssembler(out.source("web.1", 1, 0), stderr)
        for chunk in chunks:
            assembler.feed(chunk)
        assembler.flush()
        await asyncio.sleep(0)
        return bytes(sink.data)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\nb\n"], b"web.1     | a\nweb.1     | b\n"),
        ([b"hel", b"lo\nwor", b"ld\n"], b"web.1     | hello\nweb.1     | world\n"),
        ([b"no newline at end"], b"web.1     | no newline at end\n"),
        ([b"\xff\xfe\n"], b"web.1     | \xff\xfe\n"),
        ([b"\n\n"], b"web.1     | \nweb.1     | \n"),
        ([b"crlf\r\n"], b"web.1     | crlf\r\n"),
    ],
)
def test_lines_are_cut_as_bytes_and_prefixed(chunks: list[bytes], expected: bytes) -> None:
    assert feed(chunks) == expected


def test_stderr_is_marked_unless_merged() -> None:
    assert feed([b"oops\n"], stderr=True) == b"web.1     ! oops\n"
    merged = Style(timestamps=False, merge_stderr=True)
    assert feed([b"oops\n"], stderr=True, style=merged) == b"web.1     | oops\n"


def test_a_line_of_exactly_max_is_intact_and_a_longer_one_comes_in_marked_pieces() -> None:
    exact = b"a" * MAX_LINE
    assert feed([exact[:1000], exact[1000:], b"\n"]) == b"web.1     | " + exact + b"\n"
    long = b"b" * (2 * MAX_LINE + 3)
    out = feed([long[i : i + 65536] for i in range(0, len(long), 65536)] + [b"\nnext\n"])
    lines = out.split(b"\n")
    assert [len(x) for x in lines[:3]] == [MAX_LINE + 12, MAX_LINE + 12, 3 + 12]
    assert [x[:12] for x in lines[:4]] == [b"web.1     | ", b"web.1     |+", b"web.1     |+",
                                           b"web.1     | "]
    assert b"".join(x[12:] for x in lines[:3]) == long


def test_a_partial_line_is_shown_after_a_moment_and_its_rest_is_marked() -> None:
    async def go() -> bytes:
        out, sink = printer()
        assembler = LineAssembler(out.source("web.1", 1, 0), False)
        assembler.feed(b"Password: ")
        await asyncio.sleep(0)
        assert sink.data == b""
        await asyncio.sleep(PARTIAL_DELAY * 3)
        assert sink.data == b"web.1     | Password: \n"
        assembler.feed(b"ok\n")
        await asyncio.sleep(0)
        return bytes(sink.data)

    assert asyncio.run(go()) == b"web.1     | Password: \nweb.1     |+ok\n"


def test_prefix_has_a_timestamp_padding_and_a_colour_per_instance() -> None:
    out = TextFormat.for_terminal(Style(timestamps=True, color=True))
    out.add_names(["web.1", "worker.12"])
    web = out.prefix("web.1", b"| ")
    worker = out.prefix("worker.12", b"| ")
    assert re.fullmatch(rb"\x1b\[\d+m\d\d:\d\d:\d\d web\.1     \|\x1b\[0m ", web)
    assert web[:5] != worker[:5]
    plain = TextFormat.for_terminal(Style(timestamps=False, prefix=False))
    assert plain.prefix("web.1", b"| ") == b""


def check_intact(text: bytes, writers: list[str], count: int, size: int) -> None:
    """Every writer's numbered lines arrived whole, once, in order."""
    seen: dict[str, list[int]] = {w: [] for w in writers}
    pattern = re.compile(rb"^(\S+) +\| (\S+) (\d{9}) (x*)$")
    for line in text.split(b"\n"):
        match = pattern.match(line)
        if match and match.group(1).decode() in seen:
            assert match.group(1) == match.group(2)
            assert len(match.group(2)) + len(match.group(4)) + 11 == size - 1, line[:80]
            seen[match.group(1).decode()].append(int(match.group(3)))
    for writer in writers:
        assert seen[writer] == list(range(count)), writer


def test_concurrent_writers_lose_split_or_interleave_nothing(app: App) -> None:
    app.procfile(f"w: {kid('lines', '20000', '80')}\nbig: {kid('lines', '300', '70000')}\n")
    run = app.start("-m", "w=4,big=1", "--no-timestamp")
    for name in ("w.1", "w.2", "w.3", "w.4", "big.1"):
        run.wait_for(rf"{re.escape(name)} +\| lines done")
    run.signal(signal.SIGINT)
    run.finish()
    text = b"".join(run.lines)
    check_intact(text, ["w.1", "w.2", "w.3", "w.4"], 20000, 80)
    check_intact(text, ["big.1"], 300, 70000)


def test_colour_only_when_asked(app: App) -> None:
    app.procfile("web: echo hi\n")
    plain = app.start()
    plain.finish()
    assert b"\x1b[" not in b"".join(plain.lines)
    coloured = app.start("--color")
    coloured.finish()
    assert b"\x1b[" in b"".join(coloured.lines)


def test_no_prefix_prints_bare_lines(app: App) -> None:
    app.procfile("web: echo bare line\n")
    run = app.start("--no-prefix")
    run.finish()
    assert b"bare line\n" in run.lines


def test_a_prompt_without_newline_shows_before_the_child_moves_on(app: App) -> None:
    app.procfile("web: printf 'Continue? '; exec sleep 60\n")
    run = app.start()
    run.wait_for(r"web\.1 +\| Continue\? $")
    run.signal(signal.SIGINT)
    run.finish()


def test_a_slow_reader_slows_the_children_and_memory_stays_bounded(app: App) -> None:
    app.procfile(f"w: {kid('lines', '3000000', '80')}\n")
    run = app.start("-m", "w=2", read=False)
    supervisor = psutil.Process(run.proc.pid)
    writers = lambda: [p for p in app.census() if "lines" in p.cmdline()]  # noqa: E731

    def writers_blocked() -> bool:
        found = writers()
        return len(found) == 2 and all(_blocked_writing(p) for p in found)

    assert wait_until(writers_blocked, timeout=30), "writers never blocked on a full pipe"
    assert supervisor.memory_info().rss < 120 * 2**20
    run.signal(signal.SIGINT)
    assert run.proc.stdout is not None
    drained = 0
    while chunk := run.proc.stdout.read(1 << 20):
        drained += len(chunk)
    run.finish()
    assert drained > 0


def test_output_held_back_by_a_slow_reader_is_not_lost_at_stop(app: App) -> None:
    done = app.root / "done"
    app.procfile(f"w: {kid('lines', '25000', '80', str(done))}\n")
    run = app.start("-m", "w=2", "--no-timestamp", read=False)
    both_done = lambda: all(Path(f"{done}.w.{n}").exists() for n in (1, 2))  # noqa: E731
    assert wait_until(both_done, timeout=30)
    run.signal(signal.SIGINT)
    assert run.proc.stdout is not None
    text = run.proc.stdout.read()
    assert run.finish() == 130
    check_intact(text, ["w.1", "w.2"], 25000, 80)


def _blocked_writing(proc: psutil.Process) -> bool:
    try:
        with open(f"/proc/{proc.pid}/wchan") as wchan:
            where = wchan.read()
        return "pipe_write" in where or "pipe_wait" in where
    except OSError:
        return False


@pytest.mark.parametrize("cut", [1, 79, 80, 8192, 65536])
def test_block_buffered_lines_cut_anywhere_arrive_whole_and_prefixed(cut: int) -> None:
    """A block-buffered writer's reads end inside a line nearly every time: the held start
    and the whole lines after it go on as one block, each line prefixed once."""
    stream = b"".join(b"%06d " % i + b"x" * (i % 97) + b"\n" for i in range(3000))
    chunks = [stream[at : at + cut] for at in range(0, len(stream), cut)]
    expected = b"".join(b"web.1     | " + line + b"\n" for line in stream.splitlines())
    assert feed(chunks) == expected


def test_a_held_line_start_continued_past_max_is_marked_and_the_block_after_is_not() -> None:
    long_line = b"y" * (MAX_LINE + 10)
    shown = feed([long_line[:-5], long_line[-5:] + b"\nafter\nmore\n"])
    assert shown.startswith(b"web.1     | " + b"y" * MAX_LINE + b"\n")
    assert shown.endswith(
        b"\nweb.1     |+" + b"y" * 10 + b"\nweb.1     | after\nweb.1     | more\n"
    )
