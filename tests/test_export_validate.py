"""Every exported file passes a real validator of its format, offline: kubernetes-validate
(the Kubernetes schemas it bundles, strict), check-jsonschema's bundled Compose
specification schema, and ``systemd-analyze verify`` where systemd is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_export import export_args, make_shop

from procrunner.cli import main

BIN = Path(sys.executable).parent


# every mapping the validators must accept: the release step, a one-shot, http and exec
# readiness, each kind of liveness check, a stop command and dependency conditions
FEATURES = (
    "types:\n"
    "  web: {ready: {http: /health}, health: {http: /health, every: 5s, grace: 10s},"
    " stop_command: kill -TERM 1}\n"
    "  worker: {ready: {exec: test -e /tmp/ready}, health: {exec: pgrep worker},"
    " depends_on: {migrate: completed}}\n"
    "  clock: {health: {port: true}, depends_on: [worker]}\n"
    "  migrate: {once: true}\n"
)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = make_shop(tmp_path)
    procfile = (root / "Procfile").read_text()
    (root / "Procfile").write_text(
        "release: python manage.py migrate\n" + procfile + "migrate: python seed.py\n")
    (root / "procrunner.yml").write_text(FEATURES)
    return root


def export(fmt: str, root: Path, outdir: Path, *extra: str) -> Path:
    assert main(export_args(fmt, root, outdir, *extra)) == 0
    return outdir


def validator(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} comes with the test extra: pip install -e '.[test]'"
    return str(path)


# the oldest Kubernetes still commonly run and the newest kubernetes-validate bundles
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_pass_the_kubernetes_schemas(
    shop: Path, tmp_path: Path, version: str
) -> None:
    outdir = export("kubernetes", shop, tmp_path / "out", "--app", "shop", "--namespace",
                    "shop-staging", "--include-secrets")
    manifests = sorted(str(p) for p in outdir.glob("*.yaml"))
    assert len(manifests) == 7
    result = subprocess.run([validator("kubernetes-validate"), "--strict", "-k", version,
                             *manifests],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # Jobs for release and migrate, Deployments for web, worker and clock, Services for web
    # and clock, a ConfigMap and a Secret.
    assert result.stdout.count("passed") == 9, result.stdout
    text = "".join(Path(m).read_text() for m in manifests)
    for needed in ("kind: Job", "livenessProbe", "httpGet", "preStop", "namespace: shop-staging"):
        assert needed in text, needed


def test_compose_file_passes_the_compose_specification(shop: Path, tmp_path: Path) -> None:
    outdir = export("compose", shop, tmp_path / "out")
    result = subprocess.run(
        [validator("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(outdir / "compose.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _verify(unit_dir: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *units], cwd=unit_dir,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def systemd_analyze(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "probe.service").write_text("[Service]\nExecStart=/bin/true\n")
    result = _verify(probe, "probe.service")
    if result.returncode != 0 or result.stdout + result.stderr:
        pytest.skip(f"systemd-analyze verify does not work here: {result.stderr.strip()}")


@pytest.mark.usefixtures("systemd_analyze")
def test_systemd_units_pass_systemd_analyze_verify(shop: Path, tmp_path: Path) -> None:
    outdir = export("systemd", shop, tmp_path / "out")
    units = ["my-shop.target", "my-shop-release.service", "my-shop-web@5100.service",
             "my-shop-web@5101.service", "my-shop-worker@5200.service",
             "my-shop-clock@5300.service", "my-shop-migrate.service"]
    assert sorted(p.name for p in outdir.glob("*@.service")) == [
        "my-shop-clock@.service", "my-shop-web@.service", "my-shop-worker@.service"]
    result = _verify(outdir, *units)
    # verify reports a bad key or value as a warning with status 0: any output fails.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
