"""Tests for .env parsing, environment precedence and the base port."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import App
from hypothesis import given, settings
from hypothesis import strategies as st

from procrunner.config.environment import (
    base_port,
    load_env_files,
    merge_environment,
    parse_env_file,
)
from procrunner.errors import ProcrunnerError

SECRET = "hunter2-s3cr3t"
PROPERTY = settings(max_examples=300, deadline=None)


def write(directory: Path, text: str | bytes, name: str = ".env") -> Path:
    path = directory / name
    if isinstance(text, str):
        path.write_bytes(text.encode())
    else:
        path.write_bytes(text)
    return path


def assert_one_line(error: ProcrunnerError) -> None:
    assert len(str(error).splitlines()) == 1, str(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("A=1", {"A": "1"}),
        ("A=1\nB=2\n", {"A": "1", "B": "2"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("A=hello world", {"A": "hello world"}),
        ("A=  padded  ", {"A": "padded"}),
        ('A="  padded  "', {"A": "  padded  "}),
        ('A="double quoted"', {"A": "double quoted"}),
        ("A='single quoted'", {"A": "single quoted"}),
        ('A="has # hash"', {"A": "has # hash"}),
        ("A='has # hash'", {"A": "has # hash"}),
        ("A=value # comment", {"A": "value"}),
        ("A=val#ue", {"A": "val#ue"}),
        ("A= # only a comment", {"A": ""}),
        ("A=", {"A": ""}),
        ('A=""', {"A": ""}),
        ('A="say \\"hi\\""', {"A": 'say "hi"'}),
        ("A='it\\'s'", {"A": "it's"}),
        ('A="tab\\there"', {"A": "tab\there"}),
        ('A=sec"ret', {"A": 'sec"ret'}),
        ("A=${B} $C", {"A": "${B} $C"}),
        ('A="${B}"', {"A": "${B}"}),
        ("export A=1", {"A": "1"}),
        ("export   A='x y'", {"A": "x y"}),
        ("A = 1", {"A": "1"}),
        ('A="line1\nline2"\nB=2', {"A": "line1\nline2", "B": "2"}),
        ("A='line1\r\nline2'", {"A": "line1\r\nline2"}),
        (
            'A="-----BEGIN KEY-----\nabc\n-----END KEY-----"',
            {"A": "-----BEGIN KEY-----\nabc\n-----END KEY-----"},
        ),
        ("# comment\n\n   \nA=1\n  # indented\n", {"A": "1"}),
        ("A=1\nA=2", {"A": "2"}),
        ("A.B-c=1", {"A.B-c": "1"}),
        ("A=caf\u00e9 \u2603", {"A": "caf\u00e9 \u2603"}),
        ("\ufeffA=1", {"A": "1"}),
    ],
)
def test_parse_env_file(tmp_path: Path, text: str, expected: dict[str, str]) -> None:
    assert parse_env_file(write(tmp_path, text)) == expected


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        ('A="unterminated', 1, ["entry for A", "KEY=VALUE"]),
        ("A='unterminated", 1, ["entry for A"]),
        ('A="x" trailing', 1, ["entry for A"]),
        ("A='x' 'y'", 1, ["entry for A"]),
        ("export B='open", 1, ["entry for B"]),
        ("A: 1", 1, ["entry for A"]),
        ("=value", 1, ["cannot parse this line", "KEY=VALUE"]),
        ('"quoted key"=x', 1, ["cannot parse this line"]),
        ("A=1\n\n\nB='open\nC=3", 4, ["entry for B"]),
        ("\n\n  B='open", 3, ["entry for B"]),
        ("FOO", 1, ["FOO has no value; expected FOO=VALUE"]),
        ("export FOO_2", 1, ["FOO_2 has no value"]),
        # Not named: a bare word that is not a conventional name may be part of a secret.
        ("TOKEN=\nhunter2", 2, ["a word alone on a line, with no '='; expected KEY=VALUE"]),
        ("lower", 1, ["with no '='"]),
        ("TOKEN=\nhunter2 more words", 2, ["cannot parse this line"]),
        ("lower x=1", 1, ["cannot parse this line"]),
        ("lower.key = 'open", 1, ["entry for lower.key"]),
        ("A=1\r\n\r\nFOO\r\n", 3, ["FOO has no value"]),
        ("'a=b'=c", 1, ["invalid key 'a=b'"]),
        ("'my key'=c", 1, ["invalid key 'my key'"]),
        ('"TOKEN=x', 1, ["invalid key '\"TOKEN'"]),
        ("1ABC=x", 1, ["invalid key '1ABC'", "not starting with a digit"]),
        ("A$B=x", 1, ["invalid key 'A$B'"]),
        ("K\u00e9=x", 1, ["invalid key"]),
        ("A=x\x00y", 1, ["value of A", "NUL"]),
    ],
)
def test_parse_env_file_errors(tmp_path: Path, text: str, line: int, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProcrunnerError) as info:
        parse_env_file(path)
    error = info.value
    assert error.source == str(path)
    assert error.line == line
    assert str(error).startswith(f"{path}:{line}: ")
    for fragment in fragments:
        assert fragment in error.message
    assert_one_line(error)


def test_several_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "A\nB='open\nC=1\n=x\n")
    with pytest.raises(ProcrunnerError) as info:
        parse_env_file(path)
    assert info.value.line == 1
    assert info.value.message.endswith("(and 2 more problems)")


@pytest.mark.parametrize(
    "text",
    [
        f'TOKEN="{SECRET}',
        f"TOKEN='{SECRET}",
        f'TOKEN="{SECRET}" trailing',
        f'TOKEN="x" {SECRET}',
        f"TOKEN='a' '{SECRET}'",
        f"=  {SECRET}",
        f"={SECRET}",
        f"TOKEN: {SECRET}",
        f"TOKEN {SECRET}",
        f"export TOKEN {SECRET}",
        f"TOKEN=\x00{SECRET}",
        f'"TOKEN={SECRET}',
        f"A=1\nTOKEN='{SECRET}\nB=2\n",
        f'  \n\tTOKEN = "{SECRET}',
        f"TOKEN=\n{SECRET}",
        f"TOKEN=first line\n{SECRET} second line\n",
    ],
)
def test_errors_never_show_the_value(tmp_path: Path, text: str) -> None:
    with pytest.raises(ProcrunnerError) as info:
        parse_env_file(write(tmp_path, text))
    assert SECRET not in str(info.value)
    assert "s3cr3t" not in str(info.value)
    assert_one_line(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    with pytest.raises(ProcrunnerError) as info:
        parse_env_file(path)
    assert info.value.source == str(path)
    assert "not found" in info.value.message


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ProcrunnerError) as info:
        parse_env_file(tmp_path)
    assert info.value.source == str(tmp_path)


def test_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "A=1")

    def fail(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", fail)
    with pytest.raises(ProcrunnerError) as info:
        parse_env_file(path)
    assert info.value.source == str(path)
    assert "permission denied" in info.value.message


def test_invalid_utf8_names_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"A=1\nB=2\nC=\xff" + SECRET.encode())
    with pytest.raises(ProcrunnerError) as info:
        parse_env_file(path)
    assert info.value.source == str(path)
    assert info.value.line == 3
    assert "UTF-8" in info.value.message
    assert SECRET not in str(info.value)


# --- several files and precedence ---


def test_load_env_files_later_files_win(tmp_path: Path) -> None:
    first = write(tmp_path, "A=1\nB=1\n", ".env")
    second = write(tmp_path, "B=2\nC=2\n", ".env.local")
    assert load_env_files([first, second]) == {"A": "1", "B": "2", "C": "2"}
    assert load_env_files([second, first]) == {"A": "1", "B": "1", "C": "2"}
    assert load_env_files([]) == {}


def test_load_env_files_error_names_the_bad_file(tmp_path: Path) -> None:
    good = write(tmp_path, "A=1\n", ".env")
    bad = write(tmp_path, "A=1\nB\n", ".env.bad")
    with pytest.raises(ProcrunnerError) as info:
        load_env_files([good, bad])
    assert info.value.source == str(bad)
    assert info.value.line == 2


OS_ENV = {"PATH": "/bin", "A": "os", "B": "os"}
FILE_ENV = {"A": "file", "C": "file"}


@pytest.mark.parametrize(
    ("precedence", "expected"),
    [
        ("file", {"PATH": "/bin", "A": "file", "B": "os", "C": "file"}),
        ("os", {"PATH": "/bin", "A": "os", "B": "os", "C": "file"}),
    ],
)
def test_merge_environment(precedence: str, expected: dict[str, str]) -> None:
    result = merge_environment(OS_ENV, FILE_ENV, precedence)  # type: ignore[arg-type]
    assert result == expected
    assert result is not OS_ENV


def test_merge_environment_default_is_file_wins() -> None:
    assert merge_environment(OS_ENV, FILE_ENV)["A"] == "file"


def test_merge_environment_does_not_change_its_inputs() -> None:
    os_env, file_env = dict(OS_ENV), dict(FILE_ENV)
    merge_environment(os_env, file_env, "file")
    assert (os_env, file_env) == (OS_ENV, FILE_ENV)


def test_merge_environment_unknown_precedence() -> None:
    with pytest.raises(ProcrunnerError, match="expected 'file' or 'os'"):
        merge_environment(OS_ENV, FILE_ENV, "env")  # type: ignore[arg-type]


# --- base port ---


@pytest.mark.parametrize(
    ("cli_port", "env", "expected"),
    [
        (None, {}, 5000),
        (None, {"PORT": "8000"}, 8000),
        (None, {"PORT": " 8000 "}, 8000),
        (None, {"PORT": "1"}, 1),
        (None, {"PORT": "65535"}, 65535),
        (3000, {"PORT": "8000"}, 3000),
        (3000, {"PORT": "garbage"}, 3000),
    ],
)
def test_base_port(cli_port: int | None, env: dict[str, str], expected: int) -> None:
    assert base_port(cli_port, env) == expected


@pytest.mark.parametrize(
    "value", ["", "0", "65536", "-1", "80.5", "http", "1e3", "\u0661\u0662", "9" * 5000, SECRET]
)
def test_base_port_bad_env_port(value: str) -> None:
    with pytest.raises(ProcrunnerError) as info:
        base_port(None, {"PORT": value}, env_source=".env")
    assert info.value.source == ".env"
    assert "PORT" in info.value.message
    if value:
        assert value not in info.value.message
    assert_one_line(info.value)


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_base_port_bad_cli_port(port: int) -> None:
    with pytest.raises(ProcrunnerError, match="out of range"):
        base_port(port, {})


# --- properties ---


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envfiles")


def check_any(path: Path) -> None:
    try:
        result = parse_env_file(path)
    except ProcrunnerError as error:
        assert error.source == str(path)
        assert_one_line(error)
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


@PROPERTY
@given(st.text(max_size=300))
def test_any_text(scratch: Path, text: str) -> None:
    check_any(write(scratch, text))


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes(scratch: Path, data: bytes) -> None:
    check_any(write(scratch, data))


ENV_PIECES = st.sampled_from(
    ["A", "export ", "=", "'", '"', "\\", "#", " ", "\t", "\n", "\r\n", "\r", "x", "$", "{"]
)


@PROPERTY
@given(st.lists(ENV_PIECES, max_size=30))
def test_env_like_text(scratch: Path, pieces: list[str]) -> None:
    check_any(write(scratch, "".join(pieces)))


@PROPERTY
@given(
    prefix=st.lists(st.sampled_from(["A=1\n", "\n", "# c\n", "export B='x'\n"]), max_size=3),
    # No line break before the secret: it stays in TOKEN's value, not at the start of a line.
    before=st.lists(ENV_PIECES.filter(lambda p: p not in "\r\n"), max_size=6),
    after=st.lists(ENV_PIECES, max_size=6),
)
def test_secret_in_a_value_never_reaches_an_error(
    scratch: Path, prefix: list[str], before: list[str], after: list[str]
) -> None:
    text = "".join(prefix) + "TOKEN=" + "".join(before) + SECRET + "".join(after)
    try:
        parse_env_file(write(scratch, text))
    except ProcrunnerError as error:
        assert SECRET not in str(error)


def test_an_env_value_too_large_for_exec_is_named_without_its_value(app: App) -> None:
    """Over MAX_ARG_STRLEN every exec of a child would fail with E2BIG: say so before
    anything starts, naming the file, line and variable, never the value."""
    app.procfile("web: sleep 1\n")
    app.write(".env", f"OK=1\nHUGE={'v' * (128 * 1024)}\n")
    for command in ("check", "start"):
        result = app.cli(command)
        assert result.returncode == 2 and result.stdout == "", result
        line = result.stderr.strip()
        assert "\n" not in line and "Traceback" not in line
        assert ".env:2: HUGE is too large" in line and "MAX_ARG_STRLEN" in line
        assert "vvvv" not in line


def test_an_env_value_just_under_the_exec_limit_is_accepted(tmp_path: Path) -> None:
    value = "v" * (128 * 1024 - len("BIG=") - 1)
    (tmp_path / ".env").write_text(f"BIG={value}\n")
    assert parse_env_file(tmp_path / ".env") == {"BIG": value}
