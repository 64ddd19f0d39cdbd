"""End-to-end fixtures: the running sandbox (started by `make test` or `make sandbox-up`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker
import pytest

from sandbox import services
from sandbox.layout import Layout


@pytest.fixture(scope="session")
def layout() -> Layout:
    layout = Layout.from_environment()
    down = [name for name, ok in services.status(layout).items() if not ok]
    if down:
        pytest.fail(f"the sandbox is not up ({', '.join(down)} not answering): run `make sandbox-up` first, "
                    "or run the suite with `make test`", pytrace=False)
    return layout


@pytest.fixture(scope="session")
def description(layout: Layout) -> dict:
    return json.loads(layout.description_file.read_text())


@pytest.fixture(scope="session")
def zones(layout: Layout) -> Iterator[dict[str, docker.DockerClient]]:
    clients = {zone: docker.DockerClient(base_url=layout.docker_host(zone), timeout=300)
               for zone in ("dev", "cleanroom", "prod")}
    yield clients
    for client in clients.values():
        client.close()
