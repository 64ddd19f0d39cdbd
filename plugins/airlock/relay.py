"""The relay: registry-to-registry promotion over the metered link, without a Docker daemon.

1. fetch    the manifest and the blobs prod lacks, from dev-private into a content-addressed
            cache on the cleanroom worker, verifying every digest;
2. mount    every blob prod-private already holds (in any repository Airlock knows) into the
            target repository: a few hundred bytes instead of the blob;
3. send     only the blobs that are still missing, in chunks, resuming instead of restarting:
            - native: the registry follows the OCI spec's upload status (GET → Range), so an
              interrupted upload continues at the offset that arrived, also across task retries
              (the upload location and offset are kept in the cache folder);
            - staged: for registries that cancel an upload when a PATCH is interrupted (CNCF
              distribution 2.8), each chunk is a small blob of its own in a staging repository,
              committed on its own; a retry asks (HEAD) which chunks arrived. `assemble` then
              rebuilds each blob inside prod, off the metered link;
4. manifest last, so that the tag never points at an incomplete image.

Plain functions: the operators call them; the tests call them against real or fake registries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airlock.exceptions import AirlockError, RegistryError, refused_upload_method
from airlock.registry import Manifest, RegistryClient

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 256 * 1024
MAX_ATTEMPTS_PER_CHUNK = 8


@dataclass
class LinkReport:
    """What one promotion sent over the link: the XCom of the cleanroom hops."""

    blobs_sent: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0  # already in the target repository
    blob_bytes: int = 0  # blob data put on the wire, including what a drop wasted
    bytes_total: int = 0  # everything the client sent: requests, headers, bodies
    chunks_sent: int = 0
    chunks_skipped: int = 0  # already arrived in an earlier try
    retries: int = 0
    resumes: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Blob:
    digest: str
    size: int
    media_type: str = ""


def blobs_of(manifest: Manifest) -> list[Blob]:
    """Config first, then layers, as the manifest lists them."""
    body = manifest.body
    if "layers" not in body:
        raise AirlockError("only single-platform image manifests can be relayed",
                           reference=manifest.digest, cause=f"media type {manifest.media_type}", retryable=False)
    config = body["config"]
    return [Blob(config["digest"], config.get("size", 0), config.get("mediaType", ""))] + [
        Blob(layer["digest"], layer.get("size", 0), layer.get("mediaType", "")) for layer in body["layers"]]


# -- the cleanroom's cache ------------------------------------------------------------------------
class BlobCache:
    """Content-addressed files: <dir>/blobs/sha256/<hex>. Written atomically, verified on the way in."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.directory / "blobs" / algorithm / hexdigest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_bytes(self, digest: str, data: bytes) -> None:
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise AirlockError("content does not match its digest", reference=digest, retryable=False)
        self._write(digest, [data])

    def fetch(self, source: RegistryClient, repository: str, digest: str) -> int:
        """Download a blob into the cache, verifying its digest. Returns its size."""
        response = source.open_blob(repository, digest)
        try:
            return self._write(digest, response.iter_content(1024 * 1024))
        finally:
            response.close()

    def _write(self, digest: str, chunks: Iterable[bytes]) -> int:
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".partial-{os.getpid()}")
        sha = hashlib.sha256()
        size = 0
        with open(partial, "wb") as out:
            for chunk in chunks:
                sha.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if "sha256:" + sha.hexdigest() != digest:
            partial.unlink(missing_ok=True)
            raise RegistryError("a downloaded blob does not match its digest", reference=digest,
                                cause=f"got sha256:{sha.hexdigest()}", retryable=True)
        partial.replace(target)
        return size

    # Native uploads in progress, so that an Airflow retry on this worker resumes them.
    @property
    def _uploads_file(self) -> Path:
        return self.directory / "uploads.json"

    def upload_state(self, key: str) -> dict | None:
        try:
            return json.loads(self._uploads_file.read_text()).get(key)
        except (FileNotFoundError, ValueError):
            return None

    def save_upload_state(self, key: str, value: dict | None) -> None:
        try:
            state = json.loads(self._uploads_file.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._uploads_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self._uploads_file)


# -- step 1: fetch ------------------------------------------------------------------------------------
def fetch(source: RegistryClient, target: RegistryClient, repository: str, digest: str, cache: BlobCache,
          mount_from: list[str]) -> tuple[Manifest, int, int]:
    """Fetch the manifest and the blobs prod-private lacks into the cache.

    Returns (manifest, blobs fetched, bytes fetched). HEAD requests to prod-private (through the
    link) tell which blobs it already holds, so the cleanroom does not download them for nothing.
    """
    manifest = source.get_manifest(repository, digest)
    if manifest is None:
        raise RegistryError("the app manifest is not in the source registry", where=source.name,
                            reference=f"{source.address}/{repository}@{digest}", retryable=False,
                            advice="Check that the dev push finished; clear dev.push_app_dev_private.")
    if manifest.digest != digest:
        raise RegistryError("the source registry returned another manifest than asked for", where=source.name,
                            reference=digest, cause=f"got {manifest.digest}", retryable=True)
    cache.put_bytes(digest, manifest.raw)
    fetched = fetched_bytes = 0
    for blob in blobs_of(manifest):
        if cache.has(blob.digest):
            continue
        if any(target.has_blob(repo, blob.digest) for repo in [*mount_from, repository]):
            continue
        fetched_bytes += cache.fetch(source, repository, blob.digest)
        fetched += 1
    return manifest, fetched, fetched_bytes


# -- step 2: mount --------------------------------------------------------------------------------------
def mount_or_find(target: RegistryClient, repository: str, blobs: list[Blob], mount_from: list[str],
                  report: LinkReport) -> list[Blob]:
    """Skip blobs already in `repository`, mount those held elsewhere; return the ones still missing."""
    missing = []
    for blob in blobs:
        if target.has_blob(repository, blob.digest):
            report.blobs_skipped += 1
            continue
        source = next((repo for repo in mount_from if repo != repository and target.has_blob(repo, blob.digest)),
                      None)
        if source and target.mount_blob(repository, blob.digest, source):
            report.blobs_mounted += 1
            log.info("mounted %s into %s from %s (not sent)", blob.digest[:19], repository, source)
            continue
        missing.append(blob)
    return missing


def plan(target: RegistryClient, repository: str, manifest: Manifest, mount_from: list[str],
         own_layers: int | None = None) -> dict:
    """What a promotion would do, asking only HEAD questions: nothing is mounted or sent.

    Each blob is `present` (already in the target repository), `mount` (held elsewhere in the
    registry), `via_public` (a third-party layer that hops 3-4 bring to prod-private before hop 6,
    known when `own_layers` is given) or `send` (would cross the link).
    """
    blobs = blobs_of(manifest)
    third_party = set()
    if own_layers is not None:
        layers = blobs[1:]
        third_party = {b.digest for b in layers[:len(layers) - own_layers]}
    rows: list[dict[str, Any]] = []
    for blob in blobs:
        if target.has_blob(repository, blob.digest):
            action = "present"
        elif any(target.has_blob(repo, blob.digest) for repo in mount_from if repo != repository):
            action = "mount"
        elif blob.digest in third_party:
            action = "via_public"
        else:
            action = "send"
        rows.append({"digest": blob.digest, "size": blob.size, "action": action})
    to_send = [r for r in rows if r["action"] == "send"]
    manifest_bytes = 0 if target.has_manifest(repository, manifest.digest) else len(manifest.raw)
    return {"blobs": rows, "blobs_to_send": len(to_send),
            "bytes_to_send": sum(r["size"] for r in to_send) + manifest_bytes,
            "blobs_to_mount": sum(r["action"] in ("mount", "via_public") for r in rows),
            "blobs_present": sum(r["action"] == "present" for r in rows)}


# -- step 3: send ----------------------------------------------------------------------------------------
def _pause(attempt: int) -> None:
    time.sleep(min(0.2 * 2 ** attempt, 5.0))


def send_native(target: RegistryClient, repository: str, blob: Blob, cache: BlobCache, chunk_size: int,
                report: LinkReport) -> None:
    """Chunked upload that resumes at the offset the registry reports (OCI upload status)."""
    key = f"{target.address}/{repository}@{blob.digest}"
    path = cache.path(blob.digest)
    size = path.stat().st_size
    state = cache.upload_state(key)
    location, offset = None, 0
    if state:
        arrived = target.upload_status(repository, state["location"])
        if arrived is not None:
            location, offset = state["location"], arrived
            report.resumes += 1
            log.info("resuming %s at byte %d of %d", blob.digest[:19], offset, size)
    if location is None:
        location = target.start_upload(repository, blob.digest)
    cache.save_upload_state(key, {"location": location, "offset": offset})  # a retry can ask where it got to
    attempt = 0
    with open(path, "rb") as data:
        while offset < size:
            data.seek(offset)
            chunk = data.read(chunk_size)
            try:
                report.blob_bytes += len(chunk)
                try:
                    location = target.patch_chunk(repository, location, offset, chunk, blob.digest)
                except RegistryError as exc:
                    if offset or not refused_upload_method(exc):
                        raise
                    log.warning("%s refuses chunked uploads; sending %s in one request (not resumable)",
                                target.name, blob.digest[:19])
                    target.upload_monolithic(repository, blob.digest, path.read_bytes())
                    report.blob_bytes += size
                    cache.save_upload_state(key, None)
                    report.blobs_sent += 1
                    return
                offset += len(chunk)
                report.chunks_sent += 1
                cache.save_upload_state(key, {"location": location, "offset": offset})
                attempt = 0
            except RegistryError as exc:
                if not exc.retryable or attempt >= MAX_ATTEMPTS_PER_CHUNK:
                    raise
                attempt += 1
                report.retries += 1
                _pause(attempt)
                arrived = target.upload_status(repository, location)
                if arrived is None:  # the session is gone: start this blob afresh
                    log.info("upload session of %s is gone; starting it again", blob.digest[:19])
                    location, offset = target.start_upload(repository, blob.digest), 0
                else:
                    report.resumes += 1
                    offset = arrived
                cache.save_upload_state(key, {"location": location, "offset": offset})
    target.finish_upload(repository, location, blob.digest)
    cache.save_upload_state(key, None)
    report.blobs_sent += 1


def chunk_digests(path: Path, chunk_size: int) -> list[str]:
    digests = []
    with open(path, "rb") as data:
        while chunk := data.read(chunk_size):
            digests.append("sha256:" + hashlib.sha256(chunk).hexdigest())
    return digests


def send_staged(target: RegistryClient, staging: str, blob: Blob, cache: BlobCache, chunk_size: int,
                report: LinkReport) -> list[str]:
    """Send a blob as chunks, each a blob of its own in the staging repository. Returns the chunk digests."""
    path = cache.path(blob.digest)
    chunks = chunk_digests(path, chunk_size)
    # Ask which chunks already arrived only when an earlier try may have sent some: its first
    # chunk is there. A first promotion asks one question per blob, not one per chunk.
    probe = bool(chunks) and target.has_blob(staging, chunks[0])
    with open(path, "rb") as data:
        for index, digest in enumerate(chunks):
            if probe and target.has_blob(staging, digest):
                report.chunks_skipped += 1
                continue
            data.seek(index * chunk_size)
            chunk = data.read(chunk_size)
            attempt = 0
            while True:
                try:
                    report.blob_bytes += len(chunk)
                    try:
                        target.upload_monolithic(staging, digest, chunk)
                    except RegistryError as exc:
                        if not refused_upload_method(exc):
                            raise
                        target.upload_chunked_once(staging, digest, chunk)  # it refuses monolithic PUTs
                    report.chunks_sent += 1
                    break
                except RegistryError as exc:
                    if not exc.retryable or attempt >= MAX_ATTEMPTS_PER_CHUNK:
                        raise
                    attempt += 1
                    report.retries += 1
                    _pause(attempt)
                    if target.has_blob(staging, digest):  # it arrived; only the answer was lost
                        break
    report.blobs_sent += 1
    return chunks


# -- step 3b (staged): assemble inside prod ------------------------------------------------------------------
def assemble(target: RegistryClient, staging: str, repository: str, blob_digest: str, chunks: list[str]) -> bool:
    """Rebuild a blob from its staged chunks into `repository`, verifying its digest. False if already there."""
    if target.has_blob(repository, blob_digest):
        return False
    location = target.start_upload(repository, blob_digest)
    sha = hashlib.sha256()
    offset = 0
    for digest in chunks:
        response = target.open_blob(staging, digest)
        try:
            data = response.content
        finally:
            response.close()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError("a staged chunk does not match its digest", where=target.name,
                                reference=f"{staging}@{digest}", retryable=False,
                                advice="Clear the cleanroom push to send the chunk again.")
        sha.update(data)
        location = target.patch_chunk(repository, location, offset, data, blob_digest)
        offset += len(data)
    if "sha256:" + sha.hexdigest() != blob_digest:
        raise RegistryError("the reassembled blob does not match its digest", where=target.name,
                            reference=f"{repository}@{blob_digest}", cause=f"got sha256:{sha.hexdigest()}",
                            retryable=False, advice="Clear the cleanroom push and this task to stage it again.")
    target.finish_upload(repository, location, blob_digest)
    return True


@dataclass
class StagedPromotion:
    """What the cleanroom staged for prod to assemble: the XCom between the two tasks."""

    staging_repository: str
    repository: str
    manifest_digest: str
    manifest_media_type: str
    blobs: dict[str, list[str]] = field(default_factory=dict)  # blob digest -> chunk digests

    def as_dict(self) -> dict:
        return asdict(self)


def staging_repository(repository: str) -> str:
    return f"airlock-staging/{repository}"
