"""``procrunner export``: golden files for a sample app, idempotence, OUTDIR ownership, secrets
that never leave the 0600 files, and bad input as one line with exit status 2."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from procrunner.cli import main
from procrunner.export.files import MANIFEST
from procrunner.export.model import app_label, looks_secret

GOLDEN = Path(__file__).parent / "golden" / "export"
UPDATE = bool(os.environ.get("PROCRUNNER_UPDATE_GOLDEN"))
FORMATS = ("kubernetes", "compose", "systemd")
SECRETS = ("s3cr3t-key-value", "pw-in-url")
PROCFILE = (
    "web: gunicorn -b 0.0.0.0:$PORT shop:app\n"
    "worker: python worker.py --queue \"default\"\n"
    "clock: python clock.py; echo 100% done\n"
)
ENV = (
    "DEBUG=1\n"
    "SECRET_KEY=s3cr3t-key-value\n"
    "DATABASE_URL=postgres://shop:pw-in-url@db.internal/shop\n"
    'GREETING="hello world"\n'
)


def make_shop(base: Path) -> Path:
    """The sample app: web, worker and clock, an env file with values that look secret."""
    root = base / "My_Shop"
    root.mkdir()
    (root / "Procfile").write_text(PROCFILE)
    (root / ".env").write_text(ENV)
    return root


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path)


def export_args(fmt: str, root: Path, outdir: Path, *extra: str) -> list[str]:
    image = [] if fmt == "systemd" else ["--image", "registry.example/shop:1.4"]
    return ["export", fmt, str(outdir), "-d", str(root), "-p", "5000",
            "-m", "web=2,worker=1,clock=0", "--restart", "web=always,worker=on-failure",
            *image, *extra]


def run_export(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def files_of(outdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(outdir.iterdir())}


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_matches_the_golden_files(
    fmt: str, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    status, out, err = run_export(capsys, export_args(fmt, shop, outdir))
    assert status == 0, err
    assert out.startswith("wrote ")
    lines = err.splitlines()
    assert all(line.startswith("procrunner: warning: ") for line in lines), err
    assert lines[-1].startswith(f"procrunner: warning: not exported to {fmt}:")
    # The systemd units name absolute paths: the app root and OUTDIR.
    written = {name: data.replace(str(tmp_path).encode(), b"/TMP")
               for name, data in files_of(outdir).items()}
    golden = GOLDEN / fmt
    if UPDATE:
        golden.mkdir(parents=True, exist_ok=True)
        for old in golden.iterdir():
            old.unlink()
        for name, data in written.items():
            (golden / name).write_bytes(data)
    assert written == files_of(golden)


@pytest.mark.parametrize("fmt", FORMATS)
def test_values_are_only_in_0600_files_and_never_printed(
    fmt: str, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    _, out, err = run_export(capsys, export_args(fmt, shop, outdir, "--chaos", "every=5s"))
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in outdir.iterdir()}
    for name, mode in modes.items():
        assert mode == (0o600 if name.endswith((".env", ".secret.yaml")) else 0o644), name
    if fmt == "kubernetes":  # the values only behind --include-secrets
        assert not any(s.encode() in p.read_bytes() for p in outdir.iterdir() for s in SECRETS)
        _, out, err = run_export(capsys, export_args(fmt, shop, outdir, "--include-secrets"))
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in outdir.iterdir()}
    for secret in SECRETS:
        assert secret not in out + err
        holders = [p.name for p in outdir.iterdir() if secret.encode() in p.read_bytes()]
        assert holders and all(modes[name] == 0o600 for name in holders), holders


@pytest.mark.parametrize("fmt", FORMATS)
def test_exporting_twice_gives_the_same_bytes(
    fmt: str, shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    run_export(capsys, export_args(fmt, shop, outdir))
    first = files_of(outdir)
    status, _, err = run_export(capsys, export_args(fmt, shop, outdir))
    assert status == 0, err
    assert files_of(outdir) == first


def test_foreign_files_are_not_overwritten_without_force(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "compose.yaml").write_text("mine\n")
    status, _, err = run_export(capsys, export_args("compose", shop, outdir))
    assert status == 2
    assert err == (f"procrunner: {outdir}: holds files this export did not write "
                   "(compose.yaml); use --force to write into it anyway\n")
    assert (outdir / "compose.yaml").read_text() == "mine\n"
    assert sorted(p.name for p in outdir.iterdir()) == ["compose.yaml"]
    status, _, _ = run_export(capsys, export_args("compose", shop, outdir, "--force"))
    assert status == 0
    assert (outdir / "compose.yaml").read_text().startswith("services:\n")


def test_files_a_previous_export_wrote_and_this_one_does_not_are_removed(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    run_export(capsys, export_args("kubernetes", shop, outdir))
    assert (outdir / "clock.yaml").exists()
    (shop / "Procfile").write_text(PROCFILE.replace("clock", "tick"))
    status, _, err = run_export(capsys, export_args("kubernetes", shop, outdir, "-m", "web=1"))
    assert status == 0, err
    assert not (outdir / "clock.yaml").exists()
    assert (outdir / "tick.yaml").exists()
    assert "tick.yaml" in (outdir / MANIFEST).read_text().splitlines()


def test_what_cannot_map_is_one_warning_line(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = export_args("kubernetes", shop, tmp_path / "out", "--chaos", "every=10s")
    _, _, err = run_export(capsys, args)
    assert err == (
        "procrunner: warning: not exported to kubernetes: "
        "restart stop-all (clock): no equivalent, exported as Always; "
        "restart on-failure (worker): a Deployment always restarts (a one-shot step is a Job); "
        "chaos: use Chaos Mesh or LitmusChaos\n"
    )


def test_everything_maps_means_no_warning(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", "kubernetes", str(tmp_path / "out"), "-d", str(shop), "--restart", "always",
            "--image", "shop:1"]
    status, _, err = run_export(capsys, args)
    assert (status, err) == (0, "")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procrunner", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "message"), [
    (["export", "helm", "out"], "invalid choice: 'helm'"),
    (["export", "kubernetes", "out"], "--image: kubernetes runs containers: give the image"),
    (["export", "compose", "out"], "--image: compose runs containers: give the image"),
    (["export", "systemd", "out", "--image", "x"], "--image: systemd runs the commands"),
    (["export", "systemd", "out", "--app", "My App"], "--app: bad app name 'My App'"),
    (["export", "systemd", "out", "--app", "9lives"], "--app: bad app name '9lives'"),
    (["export", "systemd", "out", "--restart", "sometimes"], "unknown restart policy"),
    (["export", "systemd", "Procfile"], "exists and is not a folder"),
])
def test_bad_input_is_one_line_and_status_2(shop: Path, args: list[str], message: str) -> None:
    result = cli(*args, cwd=shop)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_compose_value_that_cannot_be_written_literally_is_refused(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / ".env").write_text("""QUOTE="it's $5"\n""")
    status, _, err = run_export(capsys, export_args("compose", shop, tmp_path / "out"))
    assert status == 2
    assert "QUOTE" in err and "$5" not in err


def test_the_systemd_env_file_escapes_what_systemd_would_interpret(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / ".env").write_text('ODD="a\\\\b \\"q\\" `x` $HOME\nline two"\n')
    run_export(capsys, export_args("systemd", shop, tmp_path / "out"))
    text = (tmp_path / "out" / "my-shop.env").read_text()
    assert text == 'ODD="a\\\\b \\"q\\" \\`x\\` \\$HOME\nline two"\n'


@pytest.mark.parametrize(("key", "value", "secret"), [
    ("SECRET_KEY", "x", True),
    ("api_token", "x", True),
    ("DB_PASSWORD", "x", True),
    ("AWS_ACCESS_KEY_ID", "x", True),
    ("GOOGLE_CREDENTIALS", "x", True),
    ("PRIVATE_PEM", "x", True),
    ("DATABASE_URL", "postgres://user:hunter2@db/app", True),
    ("REDIS_URL", "redis://:hunter2@cache:6379/0", True),
    ("DATABASE_URL", "postgres://db:5432/app", False),
    ("DATABASE_URL", "postgres://user@db/app", False),
    ("DEBUG", "1", False),
    ("GREETING", "a:b@c", False),
])
def test_the_secret_rule(key: str, value: str, secret: bool) -> None:
    assert looks_secret(key, value) is secret


@pytest.mark.parametrize(("folder", "label"), [
    ("My_Shop", "my-shop"),
    ("shop.example.com", "shop-example-com"),
    ("2048-game", "game"),
    ("--x--", "x"),
])
def test_the_app_name_from_the_folder_is_a_dns_label(folder: str, label: str) -> None:
    assert app_label(folder, given=False) == label


def test_importing_the_command_stays_light() -> None:
    code = ("import sys, procrunner.export.command; "
            "heavy = {'yaml', 'procrunner.config.app', 'procrunner.export.model'}; "
            "heavy &= set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)



SETTINGS_FILE = (
    "restart: always\n"
    "timeout: 10s\n"
    "types:\n"
    "  worker:\n"
    "    stop_signal: INT\n"
    "    stop_timeout: 30s\n"
)
# per target: the file of each type, and the lines the settings file must give web and worker
FROM_THE_SETTINGS_FILE = {
    "compose": (
        {"web": "compose.yaml", "worker": "compose.yaml"},
        {"web": ["restart: always", "stop_grace_period: 10s", "stop_signal: SIGTERM"],
         "worker": ["restart: always", "stop_grace_period: 30s", "stop_signal: SIGINT"]},
    ),
    "systemd": (
        {"web": "my-shop-web@.service", "worker": "my-shop-worker@.service"},
        {"web": ["Restart=always", "TimeoutStopSec=10s", "KillSignal=SIGTERM"],
         "worker": ["Restart=always", "TimeoutStopSec=30s", "KillSignal=SIGINT"]},
    ),
    "kubernetes": (
        {"web": "web.yaml", "worker": "worker.yaml"},
        {"web": ["restartPolicy: Always", "terminationGracePeriodSeconds: 10"],
         "worker": ["restartPolicy: Always", "terminationGracePeriodSeconds: 30"]},
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_reads_restart_timeout_and_per_type_stop_settings_from_procrunner_yml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """Issue 16, bug 1: export wrote a 5s grace period and SIGTERM and warned about stop-all,
    whatever procrunner.yml said, for it read only its own flags."""
    root = tmp_path / "My_Shop"
    root.mkdir()
    (root / "Procfile").write_text("web: gunicorn app\nworker: python worker.py\n")
    (root / "procrunner.yml").write_text(SETTINGS_FILE)
    outdir = tmp_path / "out"
    image = [] if fmt == "systemd" else ["--image", "shop:1"]
    status, _, err = run_export(capsys, ["export", fmt, str(outdir), "-d", str(root), *image])
    assert status == 0, err
    files, expected = FROM_THE_SETTINGS_FILE[fmt]
    for kind in ("web", "worker"):
        text = (outdir / files[kind]).read_text()
        if fmt == "compose":  # one file: the part of this service
            text = text.split(f"  {kind}:\n", 1)[1].split("\n  w", 1)[0]
        lines = [line.strip() for line in text.splitlines()]
        assert all(line in lines for line in expected[kind]), (kind, text)
    assert "stop-all" not in err
    assert ("stop signal (worker=SIGINT)" in err) is (fmt == "kubernetes")
