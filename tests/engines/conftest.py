"""Session fixtures of the engine tests: one dockerd and the base image for all of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engines import Docker, base_image, dockerd


@pytest.fixture(scope="session")
def docker() -> Iterator[Docker]:
    with dockerd() as client:
        yield client


@pytest.fixture(scope="session")
def base(docker: Docker) -> str:
    return base_image(docker)
