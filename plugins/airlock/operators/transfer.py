"""Push and pull hops, by digest once built.

dev.push_app_dev_private, dev.push_third_party_public, prod.pull_third_party_public,
prod.push_third_party_prod_private, cleanroom.pull_app_dev_private, cleanroom.push_app_prod_private.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airlock import docker_ops, guardrails, relay
from airlock.exceptions import DockerStreamError, RegistryError
from airlock.operators.base import BUILD, ZoneOperator, registry_hook
from airlock.refs import ImageRef
from airlock.registry import Manifest


class _RegistryOperator(ZoneOperator):
    def __init__(self, *, registry: str, registry_address: str, registry_conn_id: str | None,
                 registry_scheme: str = "https", repository: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry = registry
        self.registry_address = registry_address
        self.registry_conn_id = registry_conn_id
        self.registry_scheme = registry_scheme
        self.repository = repository

    def registry_hook(self):
        return registry_hook(self.registry, self.registry_address, self.registry_conn_id, self.registry_scheme)

    def registry_where(self) -> str:
        return f"{self.registry} registry {self.registry_address}"


class PushImageOperator(_RegistryOperator):
    """Tag a local image as registry/repository:release and push it; return the manifest digest.

    `image` is what to push: a local tag or ID (dev), or registry/repository@digest of an image
    pulled earlier (prod, cleanroom). With `expect_digest`, the hop is a promotion: if the
    registry already holds that digest, only the tag is (re)pointed and nothing is sent, and a
    push that would produce any other digest fails.
    `refuse` lists local images that must never be pushed (the artifacts image).
    """

    template_fields: Sequence[str] = ("image", "release", "expect_digest", "refuse")
    ui_color = "#d9ead3"

    def __init__(self, *, image: str, release: str, expect_digest: str | None = None,
                 refuse: Sequence[str] = (), source_files: Sequence[str] = (), mount_from: Sequence[str] = (),
                 resolve_when_not_building: bool = False,
                 mount_source: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.release = release
        self.expect_digest = expect_digest
        self.refuse = list(refuse)
        self.source_files = list(source_files)  # patterns no layer may hold (checked when non-empty)
        # dev pushes: in a run that does not build, find the release in the registry instead.
        self.resolve_when_not_building = resolve_when_not_building
        # Mount before send: blobs the target registry holds in these repositories are mounted into
        # the target repository before `docker push`, which then finds them there and sends nothing.
        # The layer list comes from the image's manifest in `mount_source` (dev-private).
        self.mount_from = list(mount_from)
        self.mount_source = dict(mount_source) if mount_source else None

    def run(self, context: Any) -> str:
        target = ImageRef(self.registry_address, self.repository, tag=self.release)
        registry = self.registry_hook()
        params = context.get("params") or {}
        if self.resolve_when_not_building and (params.get("part") or BUILD) != BUILD:
            return self._resolve(context, registry, target)
        if self.mount_source and params.get("dry_run"):
            return self._dry_run(context, registry)
        if self.expect_digest:
            done = self._already_promoted(registry, target, self.expect_digest)
            if done:
                context["ti"].xcom_push(key="transfer", value=docker_ops.TransferReport(done).already_done())
                return done
        hook = self.zone_hook()
        client = hook.get_conn()
        image_id = docker_ops.image_id(client, self.image)
        if image_id is None:
            raise DockerStreamError("the image to push is not in the zone's daemon", where=self.where(hook),
                                    reference=self.image, retryable=False,
                                    advice="The hop before this one should have built or pulled it: clear "
                                           "that task too.")
        for forbidden in self.refuse:
            if docker_ops.image_id(client, forbidden) == image_id:
                raise DockerStreamError("refused to push the artifacts image (it holds source code)",
                                        where=self.where(hook), reference=f"{self.image} -> {target}",
                                        retryable=False, advice="Check the project's stages: this image is "
                                        f"the same as {forbidden}.")
            guardrails.check_not_built_on(client, image_id, forbidden, reference=f"{self.image} -> {target}")
        if self.source_files:
            guardrails.check_no_source(client, image_id, self.source_files, reference=f"{self.image} -> {target}")
            self.log.info("No layer of %s holds source files (%s)", self.image, ", ".join(self.source_files))
        mounts = self._mount_before_send(registry) if self.mount_from and self.expect_digest else None
        docker_ops.tag(client, image_id, target.name, self.release, hop=self.hop, where=self.where(hook))
        self.log.info("Pushing %s (image %s) from the %s zone to the %s registry", target, image_id, self.zone,
                      self.registry)
        report = docker_ops.push(client, repository=target.name, tag=self.release,
                                 auth_config=registry.auth_config(), hop=self.hop, where=self.registry_where())
        if self.expect_digest and report.digest != self.expect_digest:
            raise DockerStreamError("the pushed manifest does not have the digest that was built",
                                    where=self.registry_where(), reference=str(target),
                                    cause=f"expected {self.expect_digest}, the registry has {report.digest}",
                                    retryable=False, advice="The image changed on the way: do not deploy it; "
                                    "rebuild the release.")
        self.log.info("Pushed %s@%s: %d layer(s) sent, %d already there, %d mounted", target.name, report.digest,
                      len(report.layers_sent), len(report.layers_present), len(report.layers_mounted))
        manifest = registry.get_conn().get_manifest(self.repository, report.digest)
        if manifest is not None:
            context["ti"].xcom_push(key="layers", value=manifest.layers)
        transfer = report.as_dict()
        if mounts is not None:
            transfer.update(blobs_mounted=mounts.blobs_mounted, blobs_skipped=mounts.blobs_skipped)
        context["ti"].xcom_push(key="transfer", value=transfer)
        return report.digest

    def _resolve(self, context: Any, registry, target: ImageRef) -> str:
        manifest = registry.get_conn().get_manifest(self.repository, self.release)
        if manifest is None:
            raise RegistryError(f"release {self.release} is not in the {self.registry} registry",
                                where=self.registry_where(), reference=str(target), retryable=False,
                                advice="Trigger with part 'build and promote', or give the tag of a release "
                                       "that was built before.")
        self.log.info("Not building: release %s is %s in %s", self.release, manifest.digest, self.registry)
        context["ti"].xcom_push(key="layers", value=manifest.layers)
        return manifest.digest

    def _source_manifest(self) -> Manifest:
        """The image's manifest in the source registry (dev-private, as the cleanroom sees it)."""
        assert self.mount_source and self.expect_digest
        source = registry_hook(self.mount_source["registry"], self.mount_source["registry_address"],
                               self.mount_source["registry_conn_id"], self.mount_source["registry_scheme"])
        manifest = source.get_conn().get_manifest(self.repository, self.expect_digest)
        if manifest is None:
            raise RegistryError("the image's manifest is not in the source registry", reference=self.expect_digest,
                                where=self.mount_source["registry"], retryable=False)
        return manifest

    def _dry_run(self, context: Any, registry) -> str:
        manifest = self._source_manifest()
        own_layers = context["ti"].xcom_pull(task_ids="build.app", key="own_layers")
        result = relay.plan(registry.get_conn(), self.repository, manifest, self.mount_from, own_layers)
        context["ti"].xcom_push(key="plan", value=result)
        self.log.info("DRY RUN — nothing was sent. Promoting %s would send %d blob(s), %d bytes, over the metered "
                      "link; %d would be mounted or arrive through public; %d are already there.",
                      self.expect_digest, result["blobs_to_send"], result["bytes_to_send"],
                      result["blobs_to_mount"], result["blobs_present"])
        return self.expect_digest or ""

    def _mount_before_send(self, registry) -> relay.LinkReport:
        manifest = self._source_manifest()
        report = relay.LinkReport()
        target = registry.get_conn()
        missing = relay.mount_or_find(target, self.repository, relay.blobs_of(manifest), self.mount_from, report)
        self.log.info("Mount before send: %d blob(s) mounted from %s, %d already in %s, %d to send",
                      report.blobs_mounted, ", ".join(self.mount_from), report.blobs_skipped, self.repository,
                      len(missing))
        return report

    def _already_promoted(self, registry, target: ImageRef, digest: str) -> str | None:
        client = registry.get_conn()
        manifest = client.get_manifest(self.repository, digest)
        if manifest is None:
            return None
        if client.point_tag(self.repository, self.release, manifest):
            self.log.info("%s already held %s: pointed the tag %s at it; no layer sent", self.registry_where(),
                          digest, self.release)
        else:
            self.log.info("%s already holds %s as %s: nothing to do, nothing sent", self.registry_where(),
                          digest, target)
        return digest


class PullImageOperator(_RegistryOperator):
    """Pull registry/repository@digest into the zone's daemon; return the digest."""

    template_fields: Sequence[str] = ("digest",)
    ui_color = "#d0e0e3"

    def __init__(self, *, digest: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.digest = digest

    def run(self, context: Any) -> str:
        source = ImageRef(self.registry_address, self.repository, digest=self.digest)
        hook = self.zone_hook()
        client = hook.get_conn()
        if docker_ops.image_id(client, source.pinned):
            self.log.info("%s is already in the %s zone's daemon: nothing pulled", source.pinned, self.zone)
            context["ti"].xcom_push(key="transfer", value=docker_ops.TransferReport(self.digest).already_done())
            return self.digest
        self.log.info("Pulling %s into the %s zone", source.pinned, self.zone)
        report = docker_ops.pull(client, reference=source.pinned, auth_config=self.registry_hook().auth_config(),
                                 hop=self.hop, where=self.registry_where())
        if docker_ops.image_id(client, source.pinned) is None:
            raise RegistryError("the pull finished but the image is not in the daemon", where=self.registry_where(),
                                reference=source.pinned, retryable=True)
        self.log.info("Pulled %s: %d layer(s) downloaded, %d already present", source.pinned,
                      len(report.layers_sent), len(report.layers_present))
        context["ti"].xcom_push(key="transfer", value=report.as_dict())
        return self.digest
