"""prod.deploy and verify — in the prod zone.

prod.deploy: pull the app by digest from prod-private, start it under the project's container
name, wait for its health check, and only then remove the previous container. If the new one
does not become healthy, it is removed and the previous one is restored and running again.

verify: the digest that runs in prod is the digest built in dev, and prod-private's manifest
has the same layers as the one dev pushed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import docker.errors

from airlock import docker_ops
from airlock.exceptions import DeployError, DockerDaemonError, VerifyError
from airlock.operators.transfer import _RegistryOperator
from airlock.refs import ImageRef

NS = 1_000_000_000
LABEL_PROJECT = "airlock.project"
LABEL_RELEASE = "airlock.release"
LABEL_DIGEST = "airlock.digest"


class DeployOperator(_RegistryOperator):
    template_fields: Sequence[str] = ("digest", "release")
    ui_color = "#fff2cc"

    def __init__(self, *, digest: str, release: str, project: str, container_name: str,
                 environment: dict[str, str] | None = None, ports: dict[str, int] | None = None,
                 network_mode: str | None = None, command: list[str] | None = None,
                 health: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.digest = digest
        self.release = release
        self.project = project
        self.container_name = container_name
        self.environment = environment or {}
        self.ports = ports or {}
        self.network_mode = network_mode
        self.command = command
        self.health = health or {}

    def run(self, context: Any) -> str:
        hook = self.zone_hook()
        client = hook.get_conn()
        where = self.where(hook)
        image = ImageRef(self.registry_address, self.repository, digest=self.digest)
        name = self.container_name

        current = _find_container(client, name)
        if current and current["Config"]["Labels"].get(LABEL_DIGEST) == self.digest \
                and _health(current) in ("healthy", "none") and current["State"]["Running"]:
            self.log.info("%s already runs %s and is healthy: nothing to deploy", name, image.pinned)
            return self.digest

        if docker_ops.image_id(client, image.pinned) is None:
            self.log.info("Pulling %s into the prod zone", image.pinned)
            docker_ops.pull(client, reference=image.pinned, auth_config=self.registry_hook().auth_config(),
                            hop=self.hop, where=self.registry_where())

        previous = None
        if current:
            previous = f"{name}-previous"
            stale = _find_container(client, previous)
            if stale:
                client.remove_container(stale["Id"], force=True)
            self.log.info("Keeping the running release (%s) as %s while the new one starts",
                          current["Config"]["Labels"].get(LABEL_RELEASE, "unknown"), previous)
            client.rename(current["Id"], previous)
            # Free its ports: a fixed host port can only be held by one container at a time.
            client.stop(current["Id"], timeout=10)

        try:
            new_id = self._start(client, image, name)
            status, detail = self._wait_healthy(client, new_id)
        except docker.errors.DockerException as exc:
            status, detail, new_id = "failed to start", str(exc)[:300], None
        if status == "healthy":
            if previous:
                client.remove_container(previous, force=True)
                self.log.info("Removed the previous release's container %s", previous)
            self.log.info("Release %s (%s) runs as %s in the prod zone and is healthy", self.release, self.digest,
                          name)
            return self.digest

        # The new release failed: put the previous one back.
        if new_id:
            logs = client.logs(new_id, tail=20).decode(errors="replace").strip()
            if logs:
                self.log.error("Last output of the failed container:\n%s", logs)
            client.remove_container(new_id, force=True)
        restored = ""
        if previous:
            client.rename(previous, name)
            client.start(name)
            back, _ = self._wait_healthy(client, name)
            restored = (f" The previous release was restored and runs again as {name}"
                        + (" (healthy)." if back in ("healthy", "no health check") else f" ({back})."))
        raise DeployError(f"the new release did not become healthy ({status})", where=where,
                          reference=image.pinned, cause=detail,
                          advice=(restored.strip() + " " if restored else "No previous release was running. ")
                          + "Fix the release (its health check output is above), then trigger a new run.",
                          retryable=False)

    def _start(self, client, image: ImageRef, name: str) -> str:
        healthcheck = None
        if self.health.get("command"):
            healthcheck = {
                "test": ["CMD", *self.health["command"]],
                "interval": int(self.health.get("interval_s", 2) * NS),
                "timeout": int(self.health.get("timeout_s", 5) * NS),
                "retries": int(self.health.get("retries", 3)),
                "start_period": int(self.health.get("start_period_s", 0) * NS),
            }
        host_config = client.create_host_config(
            network_mode=self.network_mode, port_bindings={p: h for p, h in self.ports.items()} or None,
            restart_policy={"Name": "unless-stopped"})
        container = client.create_container(
            image=image.pinned, name=name, environment=self.environment, command=self.command,
            ports=list(self.ports) or None, host_config=host_config, healthcheck=healthcheck,
            labels={LABEL_PROJECT: self.project, LABEL_RELEASE: self.release, LABEL_DIGEST: self.digest})
        client.start(container["Id"])
        self.log.info("Started %s from %s; waiting for its health check", name, image.pinned)
        return container["Id"]

    def _wait_healthy(self, client, container_id: str) -> tuple[str, str]:
        deadline = time.monotonic() + float(self.health.get("wait_s", 120))
        while True:
            info = client.inspect_container(container_id)
            status = _health(info)
            if not info["State"]["Running"]:
                return "exited", f"exit code {info['State'].get('ExitCode')}"
            if status == "none":
                return "no health check", ("the image has no HEALTHCHECK and the project file sets no "
                                           "deploy.health.command, so Airlock cannot tell that it works")
            if status in ("healthy", "unhealthy"):
                probes = info["State"]["Health"].get("Log") or []
                detail = probes[-1].get("Output", "").strip()[:300] if probes else ""
                return status, detail
            if time.monotonic() > deadline:
                return "still starting", f"not healthy after {self.health.get('wait_s', 120)} s"
            time.sleep(1)


def _find_container(client, name: str) -> dict | None:
    try:
        return client.inspect_container(name)
    except docker.errors.NotFound:
        return None


def _health(info: dict) -> str:
    health = info.get("State", {}).get("Health")
    return health.get("Status", "none") if health else "none"


class VerifyOperator(_RegistryOperator):
    """Check that prod runs, from prod-private, exactly the image dev built and pushed."""

    template_fields: Sequence[str] = ("digest", "release")
    ui_color = "#ead1dc"

    def __init__(self, *, digest: str, release: str, container_name: str, layers_from: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.digest = digest
        self.release = release
        self.container_name = container_name
        self.layers_from = layers_from  # the task whose XCom 'layers' lists the layers dev pushed

    def run(self, context: Any) -> dict:
        hook = self.zone_hook()
        client = hook.get_conn()
        where = self.where(hook)
        expected = ImageRef(self.registry_address, self.repository, digest=self.digest)
        info = _find_container(client, self.container_name)
        if info is None or not info["State"]["Running"]:
            raise VerifyError(f"no running container {self.container_name!r}", where=where,
                              reference=expected.pinned, retryable=False)
        try:
            image = client.inspect_image(info["Image"])
        except docker.errors.DockerException as exc:
            raise DockerDaemonError("cannot inspect the running image", where=where, cause=str(exc)[:200],
                                    retryable=True) from None
        if expected.pinned not in image.get("RepoDigests", []):
            raise VerifyError("the container does not run the digest built in dev", where=where,
                              reference=expected.pinned, cause=f"it runs {image.get('RepoDigests')}",
                              retryable=False)
        registry = self.registry_hook().get_conn()
        manifest = registry.get_manifest(self.repository, self.release)
        if manifest is None or manifest.digest != self.digest:
            raise VerifyError(f"{self.registry}'s tag {self.release} does not point at the built digest",
                              where=self.registry_where(), reference=expected.pinned,
                              cause=f"it points at {manifest.digest if manifest else 'nothing'}", retryable=False)
        layers = context["ti"].xcom_pull(task_ids=self.layers_from, key="layers") if self.layers_from else None
        if layers and list(layers) != manifest.layers:
            raise VerifyError(f"{self.registry}'s manifest has other layers than dev pushed",
                              where=self.registry_where(), reference=expected.pinned, retryable=False)
        self.log.info("Verified: %s runs %s from %s, the digest built in dev, with the same %d layers",
                      self.container_name, self.digest, self.registry, len(manifest.layers))
        return {"digest": self.digest, "layers": len(manifest.layers), "container": self.container_name}
