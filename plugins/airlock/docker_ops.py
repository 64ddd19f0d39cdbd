"""Build, tag, push and pull with docker-py, reading every stream to the end.

docker-py's own `push` returns whatever the daemon streamed and does not check it: an `error`
key in any chunk is a failure, for build, push and pull alike. Plain functions, no Airflow:
the operators call them, the unit tests call them with a mocked APIClient.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
from docker import APIClient

from airlock.exceptions import DockerDaemonError, DockerStreamError

log = logging.getLogger(__name__)

# Daemon messages that mean "try again later" rather than "fix something".
_TRANSIENT_HINTS = ("connection reset", "connection refused", "broken pipe", "i/o timeout", "eof",
                    "closed network connection", "no route to host", "network is unreachable",
                    "timeout", "tls handshake", "503", "502", "504", "too many requests", "temporary")
_AUTH_HINTS = ("unauthorized", "authentication required", "denied", "no basic auth credentials")


def _is_transient(message: str) -> bool:
    lowered = message.lower()
    if any(hint in lowered for hint in _AUTH_HINTS):
        return False
    return any(hint in lowered for hint in _TRANSIENT_HINTS)


def _advice(message: str) -> str:
    lowered = message.lower()
    if any(hint in lowered for hint in _AUTH_HINTS):
        return "The registry refused the login: fix the registry's Airflow connection; retrying will not help."
    if "no space left" in lowered or "disk quota" in lowered:
        return "The registry or daemon is out of disk space: free space, then clear the task to retry."
    if _is_transient(message):
        return "The cause looks transient: a retry is safe and will not send what already arrived twice."
    return ""


@dataclass
class TransferReport:
    """What one push or pull did, layer by layer: the small XCom-friendly summary of a hop."""

    digest: str = ""
    layers_sent: list[str] = field(default_factory=list)
    layers_present: list[str] = field(default_factory=list)
    layers_mounted: list[str] = field(default_factory=list)
    bytes_reported: int = 0

    def as_dict(self) -> dict:
        return {"digest": self.digest, "layers_sent": len(self.layers_sent),
                "layers_present": len(self.layers_present), "layers_mounted": len(self.layers_mounted),
                "bytes_reported": self.bytes_reported}

    def already_done(self) -> dict:
        """The record of a hop that found its image already in place: nothing moved."""
        return {**self.as_dict(), "already_done": True}


class _Progress:
    """About one line per layer per 10% or 5 seconds, whichever comes later."""

    def __init__(self, action: str, reference: str):
        self.action = action
        self.reference = reference
        self.last: dict[str, tuple[float, int]] = {}
        self.totals: dict[str, int] = {}

    def update(self, layer: str, current: int, total: int) -> None:
        if total <= 0:
            return
        self.totals[layer] = total
        now = time.monotonic()
        percent = int(current * 100 / total)
        last_time, last_percent = self.last.get(layer, (0.0, -100))
        if percent - last_percent >= 10 and now - last_time >= 5 or percent >= 100 and last_percent < 100:
            self.last[layer] = (now, percent)
            log.info("%s %s: layer %s %3d%% of %s", self.action, self.reference, layer, percent, _size(total))


def _size(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{nbytes} B"


def _error_of(chunk: dict) -> str | None:
    if "error" in chunk:
        detail = chunk.get("errorDetail") or {}
        return str(detail.get("message") or chunk["error"]).strip()
    return None


def consume_build(stream: Iterable[dict], *, hop: str, where: str, reference: str) -> str:
    """Read a build stream to the end, logging its output; return the built image ID."""
    image_id = ""
    for chunk in stream:
        error = _error_of(chunk)
        if error:
            raise DockerStreamError("the image build failed", hop=hop, where=where, reference=reference,
                                    cause=error, retryable=_is_transient(error),
                                    advice=_advice(error) or "Fix the Dockerfile or the build context; "
                                    "the build output above shows the failing step.")
        text = chunk.get("stream")
        if text and text.strip():
            log.info("build: %s", text.rstrip())
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
    if not image_id:
        raise DockerStreamError("the build stream ended without an image ID", hop=hop, where=where,
                                reference=reference, retryable=True)
    return image_id


def consume_push(stream: Iterable[dict], *, hop: str, where: str, reference: str) -> TransferReport:
    report = TransferReport()
    progress = _Progress("push", reference)
    for chunk in stream:
        error = _error_of(chunk)
        if error:
            raise DockerStreamError("the push failed", hop=hop, where=where, reference=reference, cause=error,
                                    retryable=_is_transient(error), advice=_advice(error))
        status, layer = chunk.get("status", ""), chunk.get("id", "")
        detail = chunk.get("progressDetail") or {}
        if status == "Pushing" and detail:
            progress.update(layer, detail.get("current", 0), detail.get("total", 0))
        elif status == "Pushed":
            report.layers_sent.append(layer)
            report.bytes_reported += progress.totals.get(layer, 0)
            log.info("push %s: layer %s sent", reference, layer)
        elif status == "Layer already exists":
            report.layers_present.append(layer)
            log.info("push %s: layer %s already in the registry, not sent", reference, layer)
        elif status.startswith("Mounted from"):
            report.layers_mounted.append(layer)
            log.info("push %s: layer %s %s (not sent)", reference, layer, status.lower())
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            report.digest = aux["Digest"]
    if not report.digest:
        raise DockerStreamError("the push stream ended without a manifest digest", hop=hop, where=where,
                                reference=reference, retryable=True)
    return report


def consume_pull(stream: Iterable[dict], *, hop: str, where: str, reference: str) -> TransferReport:
    report = TransferReport()
    progress = _Progress("pull", reference)
    for chunk in stream:
        error = _error_of(chunk)
        if error:
            raise DockerStreamError("the pull failed", hop=hop, where=where, reference=reference, cause=error,
                                    retryable=_is_transient(error), advice=_advice(error))
        status, layer = chunk.get("status", ""), chunk.get("id", "")
        detail = chunk.get("progressDetail") or {}
        if status == "Downloading" and detail:
            progress.update(layer, detail.get("current", 0), detail.get("total", 0))
        elif status == "Pull complete":
            report.layers_sent.append(layer)
            report.bytes_reported += progress.totals.get(layer, 0)
        elif status == "Already exists":
            report.layers_present.append(layer)
        elif status.startswith("Digest: "):
            report.digest = status.removeprefix("Digest: ").strip()
    return report


# -- the operations ------------------------------------------------------------------------------
def _daemon_error(exc: Exception, what: str, *, hop: str, where: str, reference: str) -> DockerDaemonError:
    message = getattr(exc, "explanation", None) or str(exc)
    transient = isinstance(exc, (docker.errors.APIError,)) and _is_transient(str(message)) \
        or not isinstance(exc, docker.errors.APIError)
    return DockerDaemonError(what, hop=hop, where=where, reference=reference, cause=str(message)[:400],
                             retryable=transient, advice=_advice(str(message)))


def build(client: APIClient, *, context: Path, dockerfile: str, tag: str, target: str | None,
          build_args: dict[str, str], labels: dict[str, str], hop: str, where: str, timeout: int) -> str:
    try:
        stream = client.build(path=str(context), dockerfile=dockerfile, tag=tag, target=target,
                              buildargs=build_args, labels=labels, rm=True, forcerm=True, pull=False,
                              decode=True, timeout=timeout)
        return consume_build(stream, hop=hop, where=where, reference=tag)
    except (docker.errors.DockerException, OSError) as exc:
        raise _daemon_error(exc, "the Docker daemon refused the build", hop=hop, where=where, reference=tag) \
            from None


def push(client: APIClient, *, repository: str, tag: str, auth_config: dict | None, hop: str,
         where: str) -> TransferReport:
    reference = f"{repository}:{tag}"
    try:
        stream = client.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config)
        return consume_push(stream, hop=hop, where=where, reference=reference)
    except (docker.errors.DockerException, OSError) as exc:
        raise _daemon_error(exc, "the Docker daemon could not push", hop=hop, where=where,
                            reference=reference) from None


def pull(client: APIClient, *, reference: str, auth_config: dict | None, hop: str, where: str) -> TransferReport:
    """Pull `reference` (registry/repository@digest) and read the stream to the end."""
    try:
        stream = client.pull(reference, stream=True, decode=True, auth_config=auth_config)
        return consume_pull(stream, hop=hop, where=where, reference=reference)
    except (docker.errors.DockerException, OSError) as exc:
        raise _daemon_error(exc, "the Docker daemon could not pull", hop=hop, where=where,
                            reference=reference) from None


def image_id(client: APIClient, reference: str) -> str | None:
    """The local image ID of `reference`, or None when the daemon does not have it."""
    try:
        return client.inspect_image(reference)["Id"]
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code == 400:  # e.g. "invalid reference format"
            raise DockerStreamError("not a valid image reference", reference=reference,
                                    cause=str(exc.explanation)[:300], retryable=False) from None
        raise _daemon_error(exc, "the Docker daemon could not inspect the image", hop="", where="",
                            reference=reference) from None


def tag(client: APIClient, image: str, repository: str, tag_name: str, *, hop: str, where: str) -> None:
    try:
        client.tag(image, repository, tag_name, force=True)
    except docker.errors.DockerException as exc:
        raise _daemon_error(exc, "the Docker daemon could not tag the image", hop=hop, where=where,
                            reference=f"{repository}:{tag_name}") from None
