"""Print N numbered lines of SIZE bytes (newline included) as fast as print() can.

Usage: writer.py N SIZE ID [--hold] [--block]    (N = 0: print until killed)

--hold: after the last line, stay alive until a signal, so that a runner that stops the
whole formation when one process exits does not cut the other writers short.

Each line is ``@@ID:SEQ:xxxx...$`` so a reader can check that every writer's sequence
arrived complete, in order, and with its exact payload (no split, no merge).
Run it with PYTHONUNBUFFERED=1 so that every print() reaches the pipe at once.

--block: write the lines through a block-buffered binary stdout instead (8 KiB writes, no
flush per line), as a program does whose output is a pipe: the heaviest load for a relay.
"""

import io
import itertools
import os
import signal
import sys


def payload_parts(size: int, writer_id: str) -> tuple[str, str]:
    """The text before and after the 10-digit sequence number of every line."""
    head = f"@@{writer_id}:"
    fill = size - 1 - len(head) - 10 - 2  # newline, ':' after SEQ and the final '$'
    if fill < 0:
        raise SystemExit(f"SIZE {size} is too small")
    return head, ":" + "x" * fill + "$"


def write(count: int, size: int, writer_id: str) -> None:
    head, tail = payload_parts(size, writer_id)
    numbers = itertools.count(1) if count == 0 else range(1, count + 1)
    for seq in numbers:
        print(f"{head}{seq:010d}{tail}")


def write_blocks(count: int, size: int, writer_id: str) -> None:
    """The same lines, through an 8 KiB buffer (whatever PYTHONUNBUFFERED says)."""
    head, tail = payload_parts(size, writer_id)
    start, end = head.encode(), (tail + "\n").encode()
    numbers = itertools.count(1) if count == 0 else range(1, count + 1)
    with open(sys.stdout.fileno(), "wb", buffering=io.DEFAULT_BUFFER_SIZE, closefd=False) as out:
        for seq in numbers:
            out.write(b"%s%010d%s" % (start, seq, end))


def main() -> None:
    try:
        how = write_blocks if "--block" in sys.argv[4:] else write
        how(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
        if "--hold" in sys.argv[4:]:
            signal.pause()
    except (KeyboardInterrupt, BrokenPipeError):
        os._exit(0)


if __name__ == "__main__":
    main()
