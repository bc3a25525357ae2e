"""``--dockerfile``: a Dockerfile for the app, so that ``docker build`` then the export is the
whole path to containers. The kind of app is read from its root: a Python project
(``pyproject.toml`` or ``requirements.txt``), a Node project (``package.json``), otherwise a
skeleton to finish. The exports give each container its command, so the image has none."""

from __future__ import annotations

from pathlib import Path

from procrunner.export.files import ExportFile

PYTHON_IMAGE = "python:3.12-slim"
NODE_IMAGE = "node:22-slim"
OTHER_IMAGE = "debian:bookworm-slim"
NAME = "Dockerfile"


def default_base_image(root: Path) -> str:
    if (root / "package.json").is_file() and not _is_python(root):
        return NODE_IMAGE
    return PYTHON_IMAGE if _is_python(root) else OTHER_IMAGE


def _is_python(root: Path) -> bool:
    return (root / "pyproject.toml").is_file() or (root / "requirements.txt").is_file()


def _install(root: Path) -> list[str]:
    if (root / "requirements.txt").is_file():  # pinned dependencies first: a cached layer
        steps = ["COPY requirements.txt ./",
                 "RUN pip install --no-cache-dir -r requirements.txt",
                 "COPY . ."]
        if (root / "pyproject.toml").is_file():
            steps.append("RUN pip install --no-cache-dir --no-deps .")
        return steps
    if (root / "pyproject.toml").is_file():
        return ["COPY . .", "RUN pip install --no-cache-dir ."]
    if (root / "package.json").is_file():
        lock = (root / "package-lock.json").is_file()
        return ["COPY package*.json ./",
                f"RUN {'npm ci' if lock else 'npm install'} --omit=dev",
                "COPY . ."]
    return ["# procrunner found no pyproject.toml, requirements.txt or package.json: install",
            "# what the Procfile's commands need here (RUN apt-get install ..., RUN make ...)",
            "COPY . ."]


def render(root: Path, base_image: str | None) -> ExportFile:
    base = base_image or default_base_image(root)
    lines = [
        "# written by procrunner export --dockerfile; build from the app root:",
        "#   docker build -f OUTDIR/Dockerfile -t IMAGE APP_ROOT",
        f"FROM {base}",
        "WORKDIR /app",
        *(["ENV PYTHONUNBUFFERED=1"] if _is_python(root) else []),
        *_install(root),
        "# the export gives each service its command (the Procfile's line)",
    ]
    return ExportFile(NAME, "\n".join(lines) + "\n")
