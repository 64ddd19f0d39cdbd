"""The relay transport's tasks (the project's `promotion.transport: relay`, the default).

cleanroom.pull_app_dev_private (hop 5)     RelayFetchOperator: manifest + blobs prod lacks → cleanroom cache
cleanroom.push_app_prod_private (hop 6)    RelayPushOperator: mount what prod has, send the rest in chunks
prod.assemble_app_prod_private             AssembleOperator: staged chunks → blobs, then the manifest (inside prod)

No Docker daemon is needed in the cleanroom. The logic is in airlock/relay.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airlock import relay
from airlock.exceptions import RegistryError
from airlock.hooks import RegistryHook
from airlock.operators.base import ZoneOperator, registry_hook
from airlock.registry import Manifest, RegistryClient


class _RelayOperator(ZoneOperator):
    """Knows the source (dev-private) and the target (prod-private), both as seen from its zone."""

    def __init__(self, *, repository: str, digest: str, source: dict[str, Any], target: dict[str, Any],
                 mount_from: Sequence[str] = (), cache_dir: str = "", chunk_size: int = relay.DEFAULT_CHUNK,
                 resume: str = "staged", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repository = repository
        self.digest = digest
        self.source = dict(source)  # registry, registry_address, registry_conn_id, registry_scheme
        self.target = dict(target)
        self.mount_from = list(mount_from)
        self.cache_dir = cache_dir
        self.chunk_size = chunk_size
        self.resume = resume

    @staticmethod
    def _hook(spec: dict[str, Any]) -> RegistryHook:
        return registry_hook(spec["registry"], spec["registry_address"], spec["registry_conn_id"],
                             spec["registry_scheme"])

    def target_where(self) -> str:
        return f"{self.target['registry']} registry {self.target['registry_address']}"

    def mount_candidates(self, target: RegistryClient) -> list[str]:
        """The project's third-party repository first, then the others of its namespace in prod-private."""
        namespace = self.repository.split("/")[0] + "/"
        candidates = list(self.mount_from)
        try:
            catalog = target.catalog()
        except RegistryError as exc:
            if not exc.retryable:
                raise
            catalog = []
        candidates += [repo for repo in catalog if repo.startswith(namespace) and repo not in candidates
                       and repo != self.repository and not repo.startswith("airlock-staging/")]
        return candidates[:20]

    def cache(self) -> relay.BlobCache:
        return relay.BlobCache(Path(self.cache_dir))


class RelayFetchOperator(_RelayOperator):
    template_fields: Sequence[str] = ("digest",)
    ui_color = "#d0e0e3"

    def run(self, context: Any) -> str:
        source = self._hook(self.source).get_conn()
        target = self._hook(self.target).get_conn()
        if target.has_manifest(self.repository, self.digest):
            self.log.info("%s already holds %s@%s: nothing to fetch", self.target_where(), self.repository,
                          self.digest)
            return self.digest
        manifest, count, nbytes = relay.fetch(source, target, self.repository, self.digest, self.cache(),
                                              self.mount_candidates(target))
        self.log.info("Fetched %s@%s from %s into the cleanroom cache %s: %d blob(s), %d bytes (blobs that "
                      "prod-private already holds were not fetched)", self.repository, self.digest,
                      self.source["registry"], self.cache_dir, count, nbytes)
        return manifest.digest


class RelayPushOperator(_RelayOperator):
    template_fields: Sequence[str] = ("digest", "release")
    ui_color = "#d9ead3"

    def __init__(self, *, release: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.release = release

    def run(self, context: Any) -> str:
        ti = context["ti"]
        target = self._hook(self.target).get_conn()
        if (context.get("params") or {}).get("dry_run"):
            return self._dry_run(context, target)
        report = relay.LinkReport()
        existing = target.get_manifest(self.repository, self.digest)
        if existing is not None:
            target.point_tag(self.repository, self.release, existing)
            report.bytes_total = target.bytes_sent
            self.log.info("Nothing new: %s already holds %s@%s (tag %s now points at it); no blob sent, "
                          "%d bytes of registry requests", self.target_where(), self.repository, self.digest,
                          self.release, report.bytes_total)
            ti.xcom_push(key="link", value=report.as_dict())
            ti.xcom_push(key="staged", value=None)
            return self.digest

        cache = self.cache()
        candidates = self.mount_candidates(target)
        if not cache.has(self.digest):  # another cleanroom worker fetched it: fetch again, off the link
            relay.fetch(self._hook(self.source).get_conn(), target, self.repository, self.digest, cache, candidates)
        raw = cache.path(self.digest).read_bytes()
        manifest = Manifest(self.digest, _media_type(raw), raw)
        blobs = relay.blobs_of(manifest)
        missing = relay.mount_or_find(target, self.repository, blobs, candidates, report)
        source = None
        for blob in missing:
            if not cache.has(blob.digest):
                source = source or self._hook(self.source).get_conn()
                cache.fetch(source, self.repository, blob.digest)

        staged = None
        if self.resume == "native":
            for blob in missing:
                self.log.info("Sending %s (%d bytes) in chunks of %d bytes, resumable", blob.digest, blob.size,
                              self.chunk_size)
                relay.send_native(target, self.repository, blob, cache, self.chunk_size, report)
            target.put_manifest(self.repository, self.release, manifest)  # last: the tag never dangles
        else:
            staging = relay.staging_repository(self.repository)
            promotion = relay.StagedPromotion(staging, self.repository, manifest.digest, manifest.media_type)
            for blob in missing:
                self.log.info("Staging %s (%d bytes) as chunks of %d bytes in %s", blob.digest, blob.size,
                              self.chunk_size, staging)
                promotion.blobs[blob.digest] = relay.send_staged(target, staging, blob, cache, self.chunk_size,
                                                                 report)
            # The manifest travels as a blob too; prod puts it in place after assembling the blobs.
            if not target.has_blob(staging, manifest.digest):
                target.upload_monolithic(staging, manifest.digest, manifest.raw)
            staged = promotion.as_dict()
        report.bytes_total = target.bytes_sent
        self.log.info("Link usage for %s@%s: %d blob(s) sent, %d mounted, %d already there; %d bytes of blob "
                      "data, %d bytes in all; %d chunk(s) sent, %d already arrived; %d retr(y/ies), %d resume(s)",
                      self.repository, self.digest, report.blobs_sent, report.blobs_mounted, report.blobs_skipped,
                      report.blob_bytes, report.bytes_total, report.chunks_sent, report.chunks_skipped,
                      report.retries, report.resumes)
        ti.xcom_push(key="link", value=report.as_dict())
        ti.xcom_push(key="staged", value=staged)
        return self.digest


    def _dry_run(self, context: Any, target: RegistryClient) -> str:
        source = self._hook(self.source).get_conn()
        manifest = source.get_manifest(self.repository, self.digest)
        if manifest is None:
            raise RegistryError("the app manifest is not in dev-private", reference=self.digest,
                                where=self.source["registry"], retryable=False)
        own_layers = context["ti"].xcom_pull(task_ids="build.app", key="own_layers")
        result = relay.plan(target, self.repository, manifest, self.mount_candidates(target), own_layers)
        context["ti"].xcom_push(key="plan", value=result)
        self.log.info("DRY RUN — nothing was sent. Promoting %s@%s would send %d blob(s), %d bytes, over the "
                      "metered link; %d blob(s) would be mounted or arrive through public; %d are already "
                      "there.", self.repository, self.digest, result["blobs_to_send"], result["bytes_to_send"],
                      result["blobs_to_mount"], result["blobs_present"])
        for row in result["blobs"]:
            self.log.info("  %-10s %s %12d bytes", row["action"], row["digest"], row["size"])
        return self.digest


def _media_type(raw: bytes) -> str:
    import json

    return json.loads(raw).get("mediaType") or "application/vnd.oci.image.manifest.v1+json"


class AssembleOperator(ZoneOperator):
    """Inside prod: rebuild each staged blob, put the manifest under the release tag, delete the chunks."""

    template_fields: Sequence[str] = ("release",)
    ui_color = "#fff2cc"

    def __init__(self, *, release: str, staged_from: str, registry: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.release = release
        self.staged_from = staged_from
        self.registry = dict(registry)

    def run(self, context: Any) -> str:
        staged = context["ti"].xcom_pull(task_ids=self.staged_from, key="staged")
        if not staged:
            self.log.info("Nothing staged by %s (already promoted, or the registry resumes uploads natively): "
                          "nothing to assemble", self.staged_from)
            return ""
        promotion = relay.StagedPromotion(**staged)
        target = registry_hook(self.registry["registry"], self.registry["registry_address"],
                               self.registry["registry_conn_id"], self.registry["registry_scheme"]).get_conn()
        for blob, chunks in promotion.blobs.items():
            if relay.assemble(target, promotion.staging_repository, promotion.repository, blob, chunks):
                self.log.info("Assembled %s from %d chunk(s) into %s", blob, len(chunks), promotion.repository)
            else:
                self.log.info("%s is already in %s", blob, promotion.repository)
        response = target.open_blob(promotion.staging_repository, promotion.manifest_digest)
        try:
            raw = response.content
        finally:
            response.close()
        manifest = Manifest(promotion.manifest_digest, promotion.manifest_media_type, raw)
        digest = target.put_manifest(promotion.repository, self.release, manifest)
        if digest != promotion.manifest_digest:
            raise RegistryError("the registry stored the manifest under another digest",
                                where=target.name, reference=f"{promotion.repository}:{self.release}",
                                cause=f"expected {promotion.manifest_digest}, got {digest}", retryable=False)
        self.log.info("%s:%s now points at %s", promotion.repository, self.release, digest)
        leftovers = [c for chunks in promotion.blobs.values() for c in chunks] + [promotion.manifest_digest]
        deleted = all([target.delete_blob(promotion.staging_repository, c) for c in set(leftovers)])
        if deleted:
            self.log.info("Deleted %d staged chunk(s) from %s", len(set(leftovers)), promotion.staging_repository)
        else:
            self.log.warning("The registry does not allow deletes: the staged chunks in %s stay until its next "
                             "garbage collection (they are referenced by nothing)", promotion.staging_repository)
        return digest
