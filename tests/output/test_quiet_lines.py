"""A partial line is shown only when its stream is truly quiet: not when the loop was merely
late and the rest of the line already waits in the pipe."""

from __future__ import annotations

import asyncio
import os
import time

from test_output import RecordingSink

from procrunner.config.settings import Style
from procrunner.output.printer import PARTIAL_DELAY, Printer, StreamProtocol


class LateLoop(StreamProtocol):
    """On its first bytes, makes the loop late: a callback blocks it past the quiet time, and
    the newline reaches the pipe after the loop last looked at the pipe, but before the quiet
    timer runs (a callback due just before it, in the same turn)."""

    def __init__(self, *args: object, write_end: int) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self._write_end = write_end

    def data_received(self, data: bytes) -> None:
        if not self.received:
            loop = asyncio.get_running_loop()
            loop.call_later(PARTIAL_DELAY / 5, time.sleep, PARTIAL_DELAY * 2)
            loop.call_later(PARTIAL_DELAY * 0.9, os.write, self._write_end, b"def\n")
        super().data_received(data)


def test_a_line_whose_newline_is_in_the_pipe_while_the_loop_is_late_is_not_split() -> None:
    async def go() -> bytes:
        sink = RecordingSink()
        printer = Printer(Style(timestamps=False), lambda _: sink)  # type: ignore[arg-type,return-value]
        printer.add_names(["web.1"])
        read_end, write_end = os.pipe()
        protocol = LateLoop(printer.source("web.1", 1, 0), False, write_end=write_end)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: protocol, os.fdopen(read_end, "rb", buffering=0))
        os.write(write_end, b"abc")
        while protocol.received < len(b"abcdef\n"):
            await asyncio.sleep(PARTIAL_DELAY / 10)
        os.close(write_end)
        await protocol.closed
        return bytes(sink.data)

    assert asyncio.run(go()) == b"web.1  | abcdef\n"
