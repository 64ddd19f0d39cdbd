"""build.artifacts, build.third_party, build.app, build.remove_artifacts — in the dev zone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker.errors

from airlock import docker_ops, guardrails
from airlock.exceptions import DockerDaemonError
from airlock.operators.base import ZoneOperator


class BuildImageOperator(ZoneOperator):
    """Build one stage's image on the zone's daemon and tag it locally as `image`.

    Returns the image ID (sha256 of its config): what the later stages and the push build on.
    """

    template_fields: Sequence[str] = ("image", "build_args", "split_from")
    ui_color = "#fde9d9"

    def __init__(self, *, stage: str, context_dir: str, dockerfile: str, image: str, target: str | None = None,
                 build_args: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                 build_timeout: int = 1800, split_from: str | None = None, own_files: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.context_dir = context_dir
        self.dockerfile = dockerfile
        self.image = image
        self.target = target
        self.build_args = build_args or {}
        self.labels = labels or {}
        self.build_timeout = build_timeout
        # For the app stage: the third-party image it must extend with own files only.
        self.split_from = split_from
        self.own_files = list(own_files)

    def run(self, context: Any) -> str:
        hook = self.zone_hook()
        client = hook.get_conn()
        self.log.info("Building the %s image %s from %s (%s%s) in the %s zone", self.stage, self.image,
                      self.context_dir, self.dockerfile, f", target {self.target}" if self.target else "", self.zone)
        image_id = docker_ops.build(
            client, context=Path(self.context_dir), dockerfile=self.dockerfile, tag=self.image, target=self.target,
            build_args=self.build_args, labels={**self.labels, "airlock.stage": self.stage}, hop=self.hop,
            where=self.where(hook), timeout=self.build_timeout)
        self.log.info("Built the %s image %s: %s", self.stage, self.image, image_id)
        if self.split_from:
            own_layers = guardrails.check_split(client, self.split_from, self.image, self.own_files)
            context["ti"].xcom_push(key="own_layers", value=own_layers)
            self.log.info("Split checked by reading the layers: %s holds none of the own files (%s); %s adds "
                          "%d layer(s) of own files only", self.split_from, ", ".join(self.own_files), self.image,
                          own_layers)
        return image_id


class RemoveImageOperator(ZoneOperator):
    """Remove a local image (the artifacts image: source and compiled output never leave dev).

    Runs whatever happened upstream (trigger rule all_done). Returns the removed image ID, or
    "" when there was nothing to remove.
    """

    template_fields: Sequence[str] = ("image",)

    def __init__(self, *, image: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image

    def run(self, context: Any) -> str:
        hook = self.zone_hook()
        client = hook.get_conn()
        image_id = docker_ops.image_id(client, self.image)
        if image_id is None:
            self.log.info("No image %s in the %s zone: nothing to remove", self.image, self.zone)
            return ""
        try:
            client.remove_image(image_id, force=True, noprune=False)
        except docker.errors.DockerException as exc:
            raise DockerDaemonError("could not remove the image", where=self.where(hook), reference=self.image,
                                    cause=str(exc)[:300], retryable=True) from None
        self.log.info("Removed %s (%s) and its intermediate layers from the %s zone", self.image, image_id,
                      self.zone)
        return image_id
