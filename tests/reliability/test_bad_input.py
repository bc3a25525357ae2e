"""G10 bad input: every parser, fed generated input, ends in a result or the one user-error
type (``ProcrunnerError``, or ``BadRequest`` on the control socket) naming where the input came
from, never another exception; and raw bytes into a live control server never harm it.

Each property runs with the small default budget and, under the ``slow`` mark, with 10,000
examples (see ``budget.py``). Regression tests for the defects these found are at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import psutil
import pytest
from budget import BUDGETS, explore
from hypothesis import strategies as st

from procrunner.cli import build_parser
from procrunner.config.environment import parse_env_file
from procrunner.config.formation import parse_formation
from procrunner.config.load import load
from procrunner.config.model import SETTINGS, TYPE_KEY_NAMES
from procrunner.config.procfile import load_procfile
from procrunner.control.protocol import encode
from procrunner.control.requests import BadRequest, parse_request
from procrunner.errors import ProcrunnerError
from tests.harness import App, kid
from tests.test_control import control_path, ps, started


def pieces(*fragments: str, size: int = 30) -> st.SearchStrategy[str]:
    """Text made of meaningful fragments (more likely to reach deep paths than random text)."""
    return st.lists(st.sampled_from(fragments), max_size=size).map("".join)


def as_bytes(text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), text.map(lambda t: t.encode(errors="surrogatepass")))


PROCFILE = as_bytes(st.one_of(
    st.text(max_size=200),
    pieces("web", "w-1", ":", " ", "\t", "#", "\n", "\r\n", "\ufeff", "\x00", "..", "/", "é",
           "sleep 1", "exec", "$PORT", "x" * 300),
))
ENV_FILE = as_bytes(st.one_of(
    st.text(max_size=200),
    pieces("A", "export ", "=", "'", '"', "\\", "#", " ", "\t", "\n", "\r", "$", "{", "}", "\x00",
           "\ufeff", "é", "v" * 300),
))
NAMES = ["web", "worker", "clock"]
FORMATION = st.one_of(
    st.text(max_size=60),
    pieces(*NAMES, "all", "=", ",", " ", "1", "0", "1001", "-", "x", "1e3", "0x10", "٣", "\n"),
)
SETTING_KEYS = [s.name for s in SETTINGS]
YAML = st.one_of(
    st.text(max_size=200),
    pieces(*SETTING_KEYS, "types", *NAMES, *TYPE_KEY_NAMES, ": ", ":", "\n", "  ", "- ", "[", "]",
           "{", "}", ",", "&a ", "*a", "<<: ", "!!python/object ", "!!binary ", "'", '"', "#",
           "1", "-5", "1e999", "10s", "always", "true", "null", "~", "...", "---", "%YAML 1.1",
           "\t", "\x00", "é"),
)
VALUE_FLAGS = ["port", "timeout", "run-for", "formation", "restart", "backoff", "give-up",
               "chaos", "router-port", "env-precedence", "color", "output", "timestamp", "tty",
               "router-type"]
OPTION_VALUE = st.tuples(
    st.sampled_from(VALUE_FLAGS),
    st.one_of(
        st.text(max_size=40),
        pieces(*NAMES, "all", "every", "rate", "seed", "types", "signal", "max", "always",
               "never", "on-failure", "stop-all", "k8s", "=", ",", "/", "+", "-", ".", " ", "0",
               "1", "9" * 20, "20ms", "s", "m", "h", "1e9", "inf", "nan", "KILL", "SIGTERM",
               "65536", "auto"),
    ),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12,
)
COMMANDS = ["ps", "scale", "restart", "stop", "kill", "chaos", "events", "logs", "connect", "fly"]
ARGUMENTS = ["targets", "counts", "signal", "action", "spec", "target", "lines", "follow",
             "output", "rows", "columns"]


def requests(commands: list[str]) -> st.SearchStrategy[bytes]:
    """Request lines: random bytes, or JSON objects with a command and random arguments."""
    argument = st.one_of(JSON_VALUE, st.sampled_from(["web", "worker.1", "on", "now", "HUP"]),
                         st.lists(st.sampled_from(NAMES), max_size=3))
    objects = st.fixed_dictionaries(
        {"id": JSON_VALUE, "command": st.one_of(st.sampled_from(commands), JSON_VALUE)},
        optional={name: argument for name in ARGUMENTS},
    )
    return st.one_of(st.binary(max_size=300), objects.map(lambda o: json.dumps(o).encode()))


def assert_user_error(error: ProcrunnerError, source: str | None = None) -> None:
    assert "\n" not in str(error) and error.message, repr(str(error))
    if source is not None:
        assert error.source is not None and source in error.source, str(error)


FILES = {"Procfile": (PROCFILE, load_procfile), ".env": (ENV_FILE, parse_env_file)}


@pytest.mark.parametrize("profile", BUDGETS)
@pytest.mark.parametrize("name", list(FILES))
def test_any_procfile_or_env_file_loads_or_raises_a_user_error_naming_it(
    profile: str, name: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    strategy, loader = FILES[name]

    def check(data: bytes) -> None:
        path.write_bytes(data)
        try:
            loader(path)
        except ProcrunnerError as error:
            assert_user_error(error, str(path))

    explore(profile, strategy, check)


@pytest.mark.parametrize("profile", BUDGETS)
def test_any_formation_parses_or_raises_a_user_error(profile: str) -> None:
    def check(spec: str) -> None:
        try:
            parse_formation(spec, NAMES)
        except ProcrunnerError as error:
            assert_user_error(error, "--formation")

    explore(profile, FORMATION, check)


def load_config(root: Path, *args: str) -> None:
    load(build_parser().parse_args(["config", "-d", str(root), *args]), {})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Procfile").write_text("".join(f"{n}: sleep 1\n" for n in NAMES))
    return tmp_path


@pytest.mark.parametrize("profile", BUDGETS)
def test_any_settings_file_loads_or_raises_a_user_error_with_file_and_line(
    profile: str, root: Path
) -> None:
    path = root / "procrunner.yml"

    def check(text: str) -> None:
        path.write_text(text, errors="surrogatepass")
        try:
            load_config(root)
        except ProcrunnerError as error:
            assert_user_error(error)
            if error.source is not None and "procrunner.yml" in error.source:
                assert error.line is not None or "nested" in error.message or (
                    "UTF-8" in error.message or "mapping" in error.message
                ), str(error)

    explore(profile, YAML, check)


@pytest.mark.parametrize("profile", BUDGETS)
def test_any_command_line_option_value_loads_or_raises_a_user_error(
    profile: str, root: Path
) -> None:
    def check(option: tuple[str, str]) -> None:
        flag, value = option
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                load_config(root, f"--{flag}={value}")
        except ProcrunnerError as error:
            assert_user_error(error)
        except SystemExit as usage:  # argparse's own checks (choices): one line, status 2
            assert usage.code == 2 and said.getvalue().count("\n") == 1, said.getvalue()

    explore(profile, OPTION_VALUE, check)


@pytest.mark.parametrize("profile", BUDGETS)
def test_any_request_line_parses_or_raises_bad_request_and_the_reply_encodes(
    profile: str,
) -> None:
    def check(line: bytes) -> None:
        try:
            request_id, _ = parse_request(line)
        except BadRequest as exc:
            encode({"id": exc.args[1] if len(exc.args) > 1 else None, "error": exc.args[0]})
        else:
            encode({"id": request_id, "ok": True})

    explore(profile, requests(COMMANDS), check)


def exchange(path: Path, data: bytes) -> list[dict[str, Any]]:
    """Send ``data``, close our side, and read every reply until the server closes."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return [json.loads(line) for line in received.splitlines()]


@pytest.mark.parametrize("profile", BUDGETS)
def test_raw_bytes_into_a_live_control_server_get_replies_and_harm_nothing(
    profile: str, app: App
) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = started(app)
    run.wait_for(r"worker\.1 +\| ready")
    path = control_path(app)
    runner = psutil.Process(run.proc.pid)
    fds = runner.num_fds()
    # Only commands that leave the formation as it is: the parser test covers the rest.
    harmless = requests(["ps", "events", "logs", "fly", "connect"])
    payloads = st.one_of(harmless, st.lists(harmless, max_size=3).map(b"\n".join))

    def check(data: bytes) -> None:
        replies = exchange(path, data + b"\n")
        assert replies[0]["protocol"] == 1  # the greeting; then one reply per request
        assert all("ok" in r or "event" in r for r in replies[1:]), replies

    explore(profile, payloads, check)
    assert ps(app)["worker.1"]["incarnation"] == 1
    assert runner.num_fds() <= fds + 5  # every connection's descriptor was closed
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert "Traceback" not in run.stderr
    assert os.path.exists(app.root)


@pytest.mark.parametrize("text", ["?\n", "timeout: 1s\n~: 1\n", "true: 1\n", "0x10: 1\n"])
def test_yaml_key_that_is_not_a_string_is_an_error_with_its_line(root: Path, text: str) -> None:
    """Regression: a null, boolean or number key was "unknown key 'None'" with no line."""
    (root / "procrunner.yml").write_text(text)
    with pytest.raises(ProcrunnerError) as caught:
        load_config(root)
    assert caught.value.line == text.count("\n"), str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("a: &a [*a]\n", "refers to itself"),
        ("timeout: [&a0 [l,l,l,l,l,l,l,l,l], " + ", ".join(
            f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)) + "]\n",
         "expands to over 10000 values"),
        ("\x1f", "malformed YAML"),
    ],
    ids=["deep-nesting-traceback", "self-alias", "alias-bomb-hang", "control-char-no-line"],
)
def test_yaml_bombs_and_deep_nesting_are_one_error_not_a_hang_or_traceback(
    root: Path, text: str, message: str
) -> None:
    """Regression: an alias bomb hung ``procrunner config`` (repr of 10^9 values), deep
    nesting raised RecursionError, a control character's error had no line."""
    (root / "procrunner.yml").write_text(text)
    with pytest.raises(ProcrunnerError) as caught:
        load_config(root)
    assert message in caught.value.message
    assert caught.value.line is not None or message == "nested too deeply"
