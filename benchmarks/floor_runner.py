"""The floor of an asyncio Procfile runner, for bench_floor.py: what any runner built on
asyncio and psutil pays before it does anything of its own.

    floor_runner.py start -f PROCFILE -m all=N

Imports what procrunner cannot do without (asyncio without OpenSSL, psutil, dataclasses,
pathlib, argparse) the way procrunner does (no garbage collection while importing, the result
frozen), then starts N instances of the Procfile's one command and relays their lines with a
prefix. No settings, scratch, watchdog, control socket, readiness, restarts or clean stop:
only the part every peer also has.
"""

import gc
import sys

gc.disable()
sys.modules["ssl"] = None  # type: ignore[assignment]  # as procrunner's cli._lean_imports
sys.modules["_hashlib"] = None  # type: ignore[assignment]
import argparse  # noqa: E402
import asyncio  # noqa: E402
import dataclasses  # noqa: E402, F401  (procrunner's building blocks, imported for their cost)
import pathlib  # noqa: E402, F401
import subprocess  # noqa: E402

import psutil  # noqa: E402, F401

gc.freeze()
gc.enable()


async def run(count: int, command: str) -> None:
    loop = asyncio.get_running_loop()
    out = sys.stdout.buffer

    async def relay(number: int) -> None:
        child = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), child.stdout)
        while line := await reader.readline():
            out.write(b"s.%d | %s" % (number, line))
            out.flush()

    await asyncio.gather(*(relay(n) for n in range(1, count + 1)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["start"])
    parser.add_argument("-f", "--procfile", required=True)
    parser.add_argument("-m", "--formation", default="all=1")
    parser.add_argument("--no-color", action="store_true")
    args = parser.parse_args()
    count = int(args.formation.partition("=")[2])
    with open(args.procfile) as procfile:
        command = procfile.read().partition(":")[2].strip()
    asyncio.run(run(count, command))


if __name__ == "__main__":
    main()
