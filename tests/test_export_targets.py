"""What makes an export run on its engine (issue 20), checked on the files: Compose that 1.29
reads, systemd units that name where they are installed, a Kubernetes Secret without values,
the Dockerfile, and the warnings for what will not work in a container or under systemd. The
engines themselves run these in tests/engines (-m engines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from test_export import cli, export_args, make_shop, run_export

from procrunner.export.files import MANIFEST


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = make_shop(tmp_path)
    (root / "Procfile").write_text("release: python manage.py migrate\n"
                                   + (root / "Procfile").read_text())
    return root


def compose_services(outdir: Path) -> dict[str, Any]:
    document = yaml.safe_load((outdir / "compose.yaml").read_text())
    assert set(document) == {"services"}  # no top-level name: docker-compose 1.29 refuses it
    services: dict[str, Any] = document["services"]
    return services


def test_compose_runs_the_release_first_under_an_init_on_loopback_ports(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    status, _, err = run_export(capsys, export_args("compose", shop, outdir))
    assert status == 0, err
    services = compose_services(outdir)
    release = services["release"]
    assert (release["restart"], "deploy" in release, "ports" in release) == ("no", False, False)
    for name in ("web", "worker", "clock"):
        assert services[name]["init"] is True
        assert services[name]["depends_on"] == {
            "release": {"condition": "service_completed_successfully"}}
    assert services["web"]["ports"] == ["127.0.0.1::5100"]
    run_export(capsys, export_args("compose", shop, outdir, "--publish-all"))
    assert compose_services(outdir)["web"]["ports"] == ["5100"]


def test_compose_maps_exec_checks_to_healthchecks_and_waits_for_healthy(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / "procrunner.yml").write_text(
        "types:\n"
        "  worker: {health: {exec: test -e /tmp/alive, every: 3s, failures: 2, grace: 1s}}\n"
        "  clock: {depends_on: [worker]}\n")
    status, _, err = run_export(capsys, export_args("compose", shop, tmp_path / "out"))
    assert status == 0, err
    services = compose_services(tmp_path / "out")
    assert services["worker"]["healthcheck"] == {
        "test": ["CMD-SHELL", "test -e /tmp/alive"], "interval": "3s", "timeout": "2s",
        "retries": 2, "start_period": "1s"}
    assert services["clock"]["depends_on"]["worker"] == {"condition": "service_healthy"}
    assert "health (worker): compose marks it unhealthy but does not restart it" in err


def test_systemd_units_name_the_install_dir_user_and_path_and_order_the_release_first(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    status, _, err = run_export(capsys, export_args(
        "systemd", shop, outdir, "--user", "shop:www", "--path", "/srv/shop/.venv/bin:/usr/bin",
        "--install-dir", "/usr/local/lib/systemd/system"))
    assert status == 0, err
    web = (outdir / "my-shop-web@.service").read_text().splitlines()
    for line in ("User=shop", "Group=www", "Environment=PATH=/srv/shop/.venv/bin:/usr/bin",
                 "EnvironmentFile=/usr/local/lib/systemd/system/my-shop.env",
                 "Requires=my-shop-release.service", "After=my-shop-release.service"):
        assert line in web
    release = (outdir / "my-shop-release.service").read_text().splitlines()
    assert "Type=oneshot" in release and "RemainAfterExit=yes" in release
    assert not any(line.startswith("Restart=") for line in release)  # it runs once
    assert not any(line.startswith("ExecStartPre") for line in web)  # not once per instance
    assert "Wants=my-shop-release.service" in (outdir / "my-shop.target").read_text()
    assert "named without a folder" not in err


def test_systemd_warns_about_a_program_without_a_folder_and_no_path(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = run_export(capsys, export_args("systemd", shop, tmp_path / "out"))
    assert ("release (python), web (gunicorn), worker (python), clock (python) named without a "
            "folder: the unit's PATH is systemd's, not yours") in err
    assert not any(line.startswith("Environment=PATH=")
                   for line in (tmp_path / "out" / "my-shop-web@.service").read_text().split())


def test_systemd_binds_an_app_root_that_private_tmp_hides_back_in(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert shop.is_relative_to("/tmp"), "pytest's tmp_path is expected under /tmp"
    _, _, err = run_export(capsys, export_args("systemd", shop, tmp_path / "out"))
    assert f"BindPaths={shop}\n" in (tmp_path / "out" / "my-shop-web@.service").read_text()
    assert f"the app root {shop} is under /tmp, which PrivateTmp= hides" in err


def test_kubernetes_writes_the_secret_keys_not_values_and_leaves_the_values_file_alone(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outdir = tmp_path / "out"
    status, out, err = run_export(capsys, export_args("kubernetes", shop, outdir,
                                                      "--namespace", "shop"))
    assert status == 0, err
    assert ("kubectl create secret generic my-shop-secret --from-env-file=my-shop.secret.env "
            "--namespace shop") in out
    assert (outdir / "my-shop.secret.env.example").read_text().endswith(
        "DATABASE_URL=\nSECRET_KEY=\n")
    assert not (outdir / "my-shop.secret.yaml").exists()
    assert "/my-shop.secret.env\n" in (outdir / ".gitignore").read_text()
    release = yaml.safe_load((outdir / "release.yaml").read_text())
    assert (release["kind"], release["spec"]["template"]["spec"]["restartPolicy"]) == (
        "Job", "Never")
    assert release["metadata"]["namespace"] == "shop"
    (outdir / "my-shop.secret.env").write_text("SECRET_KEY=filled-in\n")  # the user's
    status, _, err = run_export(capsys, export_args("kubernetes", shop, outdir))
    assert status == 0, err
    assert (outdir / "my-shop.secret.env").read_text() == "SECRET_KEY=filled-in\n"
    assert "my-shop.secret.env" not in (outdir / MANIFEST).read_text().split()


@pytest.mark.parametrize("fmt", ["kubernetes", "compose"])
def test_containers_are_warned_about_loopback_binds_and_local_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "Procfile").write_text("web: python -m http.server --bind 127.0.0.1 $PORT\n"
                                   "worker: python worker.py\n")
    (root / ".env").write_text("DATABASE_URL=sqlite:///app.sqlite3\n")
    (root / "procrunner.yml").write_text("types:\n  worker: {backing: [data/queue]}\n")
    status, _, err = run_export(capsys, ["export", fmt, str(tmp_path / "out"), "-d", str(root),
                                         "--image", "app:1"])
    assert status == 0, err
    assert "web binds 127.0.0.1: in a container only that container reaches it" in err
    assert (f"DATABASE_URL (a SQLite URL), backing path {root / 'data/queue'} are local files: "
            "each container gets its own copy; a backing service is an attached resource") in err
    assert "sqlite:///app.sqlite3" not in err  # a value is never printed


@pytest.mark.parametrize(("files", "expected"), [
    ({"pyproject.toml": "[project]\nname = 'x'\n"},
     ["FROM python:3.12-slim", "COPY . .", "RUN pip install --no-cache-dir ."]),
    ({"requirements.txt": "flask\n"},
     ["FROM python:3.12-slim", "COPY requirements.txt ./",
      "RUN pip install --no-cache-dir -r requirements.txt", "COPY . ."]),
    ({"package.json": "{}", "package-lock.json": "{}"},
     ["FROM node:22-slim", "COPY package*.json ./", "RUN npm ci --omit=dev", "COPY . ."]),
    ({}, ["FROM debian:bookworm-slim", "COPY . ."]),
])
def test_the_dockerfile_follows_the_kind_of_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str],
    expected: list[str]
) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "Procfile").write_text("web: run-it\n")
    for name, text in files.items():
        (root / name).write_text(text)
    outdir = tmp_path / "out"
    status, _, err = run_export(capsys, ["export", "compose", str(outdir), "-d", str(root),
                                         "--image", "app:1", "--dockerfile"])
    assert status == 0, err
    lines = [line for line in (outdir / "Dockerfile").read_text().splitlines()
             if not line.startswith(("#", "WORKDIR", "ENV"))]
    assert lines == expected
    run_export(capsys, ["export", "compose", str(outdir), "-d", str(root), "--image", "app:1",
                        "--dockerfile", "--base-image", "local/base:1"])
    assert "\nFROM local/base:1\n" in (outdir / "Dockerfile").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["export", "systemd", "out", "--namespace", "x"],
     "--namespace: systemd runs the commands on this host: --namespace does not apply"),
    (["export", "compose", "out", "--image", "x", "--user", "app"],
     "--user: compose runs containers: --user does not apply"),
    (["export", "compose", "out", "--image", "x", "--base-image", "y"],
     "--base-image: goes with --dockerfile"),
    (["export", "systemd", "out", "--install-dir", "etc/systemd"],
     "--install-dir: must be an absolute path"),
    (["export", "systemd", "out", "--path", "/my bin"], "--path: must be folders"),
    (["export", "kubernetes", "out", "--image", "x", "--namespace", "Prod"],
     "--app: bad app name 'Prod'"),
])
def test_an_option_of_another_target_is_one_line_and_status_2(
    shop: Path, args: list[str], message: str
) -> None:
    result = cli(*args, cwd=shop)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
