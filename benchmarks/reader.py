"""Readers for a runner's stdout.

reader.py save OUTFILE EXPECTED IDLE
    Read stdin in 1 MiB chunks, write them to OUTFILE and count writer lines (each holds
    one ``@@``). When EXPECTED have arrived, print ``{"done": T}`` (T = time.monotonic(), which
    is system-wide on Linux); if nothing arrives for IDLE seconds first, print
    ``{"stalled": T_last_data}``. Keep draining until EOF, then print ``{"bytes": B, "marks": M}``.
reader.py slow CHUNK PERIOD
    Read CHUNK bytes every PERIOD seconds until EOF; print ``{"bytes": B}``.
"""

import json
import os
import select
import sys
import time

CHUNK = 1 << 20


def report(**fields: float) -> None:
    print(json.dumps(fields), flush=True)


def save(outfile: str, expected: int, idle: float) -> None:
    marks = total = 0
    last_byte = b""
    last_data = time.monotonic()
    announced = False
    with open(outfile, "wb", buffering=0) as out:
        while True:
            if not announced:
                ready, _, _ = select.select([0], [], [], idle)
                if not ready:
                    report(stalled=last_data)
                    announced = True
                    continue
            data = os.read(0, CHUNK)
            if not data:
                break
            last_data = time.monotonic()
            out.write(data)
            total += len(data)
            marks += (last_byte + data).count(b"@@")
            last_byte = data[-1:]
            if not announced and marks >= expected:
                report(done=last_data)
                announced = True
    if not announced:
        report(stalled=last_data)
    report(bytes=total, marks=marks)


def slow(chunk: int, period: float) -> None:
    total = 0
    while data := os.read(0, chunk):
        total += len(data)
        time.sleep(period)
    report(bytes=total)


def main() -> None:
    if sys.argv[1] == "save":
        save(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        slow(int(sys.argv[2]), float(sys.argv[3]))


if __name__ == "__main__":
    main()
