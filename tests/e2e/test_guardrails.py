"""Guardrails on real images in the dev zone's daemon (the real `docker save` layout)."""

from __future__ import annotations

import uuid

import docker
import pytest

from airlock import guardrails
from airlock.guardrails import GuardrailError
from sandbox import images
from sandbox.promotion import build


@pytest.fixture
def dev(zones) -> docker.DockerClient:
    return zones["dev"]


def test_real_images_split_checked_by_their_layers(dev: docker.DockerClient):
    name = f"guard{uuid.uuid4().hex[:8]}"
    third_party = f"{name}/third-party:1"
    build(dev, f"FROM {images.BUSYBOX_IMAGE}\nRUN mkdir /app && echo lib > /app/ThirdParty.Lib.{name}.dll\n",
          third_party)
    good = f"{name}/app:good"
    build(dev, f"FROM {third_party}\nRUN echo own > /app/Shop.Api.{name}.dll\n", good)
    assert guardrails.check_split(dev.api, third_party, good, ["Shop.*"]) == 1

    leaky = f"{name}/app:leaky"
    build(dev, f"FROM {third_party}\nRUN echo own > /app/Shop.Api.dll && echo x > /app/Program.cs "
               f"&& echo {name} > /app/Other.dll\n", leaky)
    with pytest.raises(GuardrailError) as error:
        guardrails.check_split(dev.api, third_party, leaky, ["Shop.*"])
    assert "/app/Other.dll" in str(error.value)
    with pytest.raises(GuardrailError) as error:
        guardrails.check_no_source(dev.api, leaky, list(guardrails.DEFAULT_SOURCE_PATTERNS), leaky)
    top_layer = dev.api.inspect_image(leaky)["RootFS"]["Layers"][-1]
    assert "/app/Program.cs" in str(error.value) and top_layer[:19] in str(error.value)
    for tag in (leaky, good, third_party):
        dev.images.remove(tag, force=True)
