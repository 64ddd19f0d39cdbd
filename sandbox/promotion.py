"""Promotions on the sandbox, for the tests and the benchmarks: images of a chosen shape, the
third-party path into prod-private (dev → public → prod → prod-private), and the cleanroom hop
run through Airlock's real operators (real registries, real link, real daemons; no scheduler).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from airlock.operators import (
    AssembleOperator,
    PullImageOperator,
    PushImageOperator,
    RelayFetchOperator,
    RelayPushOperator,
)
from airlock.registry import Manifest, RegistryClient
from sandbox import images, services
from sandbox.__main__ import link_request
from sandbox.airflow_stack import _read_env_file
from sandbox.layout import Layout


def use_sandbox_connections(layout: Layout) -> None:
    """Give this process the sandbox's Airflow connections (AIRFLOW_CONN_*) and settings."""
    for key, value in _read_env_file(layout.env_file).items():
        if key.startswith(("AIRFLOW_CONN_", "AIRLOCK_")):
            os.environ[key] = value


class FakeTI:
    """The part of a TaskInstance the operators use: XCom push and pull, kept in a dict."""

    def __init__(self, store: dict | None = None):
        self.store: dict[tuple[str, str], Any] = store if store is not None else {}
        self.task_id = ""

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.store.get((task_ids, key))


def run_task(operator, ti: FakeTI, params: dict | None = None) -> Any:
    ti.task_id = operator.task_id
    value = operator.execute({"ti": ti, "params": params or {}})
    ti.store[(operator.task_id, "return_value")] = value
    return value


def context_tar(dockerfile: str) -> io.BytesIO:
    data = dockerfile.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def build(client: docker.DockerClient, dockerfile: str, tag: str) -> str:
    image, _ = client.images.build(fileobj=context_tar(dockerfile), custom_context=True, tag=tag,
                                   network_mode="none", rm=True)
    return image.id


def auth_config(layout: Layout) -> dict[str, str]:
    """docker-py's auth_config for the sandbox's registries (they all require the same login)."""
    return dict(services.registry_credentials(layout))


def push(client: docker.DockerClient, repository: str, tag: str, auth: dict[str, str]) -> str:
    digest = ""
    for chunk in client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        assert "error" not in chunk, chunk
        digest = chunk.get("aux", {}).get("Digest", digest)
    return digest


@dataclass
class Project:
    """One throw-away project namespace in the sandbox's registries."""

    layout: Layout
    zones: dict[str, docker.DockerClient]
    name: str = field(default_factory=lambda: f"lt{uuid.uuid4().hex[:10]}")
    runtime: str = images.RUNTIME_IMAGE

    @property
    def app(self) -> str:
        return f"{self.name}/app"

    @property
    def third_party(self) -> str:
        return f"{self.name}/third-party"

    @property
    def auth(self) -> dict[str, str]:
        return auth_config(self.layout)

    def registry(self, name: str, seen_from: str | None = None) -> RegistryClient:
        return RegistryClient(self.layout.registry_address(name, seen_from), scheme="http", name=name,
                              username=self.auth["username"], password=self.auth["password"])

    def release(self, tag: str, dependency_kb: int, own_kb: int, seed: str,
                third_party_seed: str | None = None) -> tuple[str, str]:
        """Build third-party (runtime + a dependency layer) and app (+ an own-code layer) in dev;
        push app to dev-private; take third-party to prod-private the way hops 2-4 do.
        Returns (app digest, third-party digest). Layer contents are random: incompressible, and
        new for every project and seed (the RUN lines name both, so no build cache is reused).
        The same `third_party_seed` gives the same third-party image (a code-only release)."""
        dev = self.zones["dev"]
        dev_private = self.layout.registry_address("dev-private")
        public = self.layout.registry_address("public")
        prod_private = self.layout.registry_address("prod-private")
        tp_tag = f"{public}/{self.third_party}:{tag}"
        build(dev, f"FROM {self.runtime}\nRUN mkdir -p /app && head -c {dependency_kb * 1024} /dev/urandom "
                   f"> /app/ThirdParty.{self.name}.{third_party_seed or seed}.lib\n", tp_tag)
        build(dev, f"FROM {tp_tag}\nRUN head -c {own_kb * 1024} /dev/urandom > /app/Own.{self.name}.{seed}.bin\n",
              f"{dev_private}/{self.app}:{tag}")
        app_digest = push(dev, f"{dev_private}/{self.app}", tag, self.auth)
        tp_digest = push(dev, f"{public}/{self.third_party}", tag, self.auth)
        prod = self.zones["prod"]
        prod.images.pull(f"{public}/{self.third_party}@{tp_digest}", auth_config=self.auth)
        prod.api.tag(f"{public}/{self.third_party}@{tp_digest}", f"{prod_private}/{self.third_party}", tag)
        assert push(prod, f"{prod_private}/{self.third_party}", tag, self.auth) == tp_digest
        return app_digest, tp_digest

    def minimum(self, app_digest: str) -> int:
        """Bytes of the blobs prod-private lacks for this app (read directly, not via the link) + manifest."""
        manifest = self.registry("dev-private").get_manifest(self.app, app_digest)
        assert manifest is not None
        prod = self.registry("prod-private")
        repos = prod.catalog()
        body = manifest.body
        blobs = [body["config"], *body["layers"]]
        lacking = [b for b in blobs if not any(prod.has_blob(r, b["digest"]) for r in repos)]
        return sum(b["size"] for b in lacking) + len(manifest.raw)

    def own_layer_size(self, app_digest: str) -> int:
        manifest = self.registry("dev-private").get_manifest(self.app, app_digest)
        assert manifest is not None
        body = manifest.body
        return body["layers"][-1]["size"] + body["config"]["size"] + len(manifest.raw)

    def prod_manifest(self, tag: str) -> Manifest | None:
        return self.registry("prod-private").get_manifest(self.app, tag)

    # -- the cleanroom hop, as the DAG runs it --------------------------------------------------
    def _registry_args(self, name: str, zone: str) -> dict:
        return {"registry": name, "registry_address": self.layout.registry_address(name, zone),
                "registry_conn_id": f"airlock_registry_{name.replace('-', '_')}", "registry_scheme": "http"}

    def relay_tasks(self, app_digest: str, release: str, chunk_size: int = 256 * 1024,
                    cache_dir: Path | None = None) -> list:
        common = dict(repository=self.app, digest=app_digest, source=self._registry_args("dev-private", "cleanroom"),
                      target=self._registry_args("prod-private", "cleanroom"), mount_from=[self.third_party],
                      cache_dir=str(cache_dir or self.layout.state_dir / "cleanroom-cache"), chunk_size=chunk_size,
                      resume="staged", zone="cleanroom", zone_conn_id="airlock_zone_cleanroom")
        return [
            RelayFetchOperator(task_id="cleanroom.pull_app_dev_private", **common),
            RelayPushOperator(task_id="cleanroom.push_app_prod_private", release=release, **common),
            AssembleOperator(task_id="prod.assemble_app_prod_private", release=release,
                             staged_from="cleanroom.push_app_prod_private",
                             registry=self._registry_args("prod-private", "prod"), zone="prod",
                             zone_conn_id="airlock_zone_prod"),
        ]

    def docker_tasks(self, app_digest: str, release: str) -> list:
        dev_private = self._registry_args("dev-private", "cleanroom")
        return [
            PullImageOperator(task_id="cleanroom.pull_app_dev_private", repository=self.app, digest=app_digest,
                              zone="cleanroom", zone_conn_id="airlock_zone_cleanroom", **dev_private),
            PushImageOperator(task_id="cleanroom.push_app_prod_private", repository=self.app, release=release,
                              image=f"{dev_private['registry_address']}/{self.app}@{app_digest}",
                              expect_digest=app_digest, mount_from=[self.third_party], mount_source=dev_private,
                              zone="cleanroom", zone_conn_id="airlock_zone_cleanroom",
                              **self._registry_args("prod-private", "cleanroom")),
        ]

    def promote(self, transport: str, app_digest: str, release: str, **kwargs) -> tuple[dict, FakeTI]:
        """Run the cleanroom hop; return the link's counters for it, and the XComs."""
        tasks = self.relay_tasks(app_digest, release, **kwargs) if transport == "relay" else \
            self.docker_tasks(app_digest, release)
        link_request(self.layout, "/reset", {})
        ti = FakeTI()
        for task in tasks:
            run_task(task, ti)
        return link_request(self.layout, "/stats"), ti


def dump(data: dict) -> str:
    return json.dumps(data, indent=1, default=str)
