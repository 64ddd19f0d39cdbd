"""Guardrails read the layers: a synthetic `docker save` archive stands in for the daemon."""

from __future__ import annotations

import io
import json
import tarfile
from unittest import mock

import pytest
from docker import APIClient

from airlock import guardrails
from airlock.guardrails import GuardrailError

RUNTIME = [["usr/lib/runtime/runtime.bin", "bin/sh"]]
THIRD_PARTY = RUNTIME + [["app/", "app/ThirdParty.Json.lib"]]
APP = THIRD_PARTY + [["app/", "app/Shop.Api.dll", "app/Shop.Domain.dll"]]


def layer_tar(paths: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in paths:
            info = tarfile.TarInfo(path.rstrip("/"))
            if path.endswith("/"):
                info.type = tarfile.DIRTYPE
            else:
                info.size = 4
            tar.addfile(info, io.BytesIO(b"data") if not path.endswith("/") else None)
    return buffer.getvalue()


def saved_image(layers: list[list[str]]) -> bytes:
    """What `docker save` streams (legacy layout): <n>/layer.tar files and manifest.json."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        names = []
        for index, paths in enumerate(layers):
            data = layer_tar(paths)
            info = tarfile.TarInfo(f"{index}/layer.tar")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            names.append(info.name)
        manifest = json.dumps([{"Config": "config.json", "Layers": names}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return buffer.getvalue()


def diff_id(paths: list[str]) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(json.dumps(paths).encode()).hexdigest()


@pytest.fixture
def daemon():
    images: dict[str, list[list[str]]] = {}
    client = mock.create_autospec(APIClient, instance=True)
    client.inspect_image.side_effect = lambda name: {"RootFS": {"Layers": [diff_id(p) for p in images[name]]}}
    client.get_image.side_effect = lambda name: iter([saved_image(images[name])])
    return client, images


def test_a_clean_split_passes(daemon):
    client, images = daemon
    images.update(third_party=THIRD_PARTY, app=APP)
    assert guardrails.check_split(client, "third_party", "app", ["Shop.*"]) == 1


def test_own_files_in_third_party_are_named_with_their_layer(daemon):
    client, images = daemon
    images.update(third_party=RUNTIME + [["app/ThirdParty.Json.lib", "app/Shop.Api.dll"]], app=APP)
    with pytest.raises(GuardrailError) as error:
        guardrails.check_split(client, "third_party", "app", ["Shop.*"])
    message = str(error.value)
    assert "/app/Shop.Api.dll" in message and diff_id(images["third_party"][-1])[:19] in message
    assert "own-code pattern Shop.*" in message and error.value.retryable is False


def test_third_party_files_in_the_app_layer_are_refused(daemon):
    client, images = daemon
    images.update(third_party=THIRD_PARTY, app=THIRD_PARTY + [["app/Shop.Api.dll", "app/Newtonsoft.Json.dll"]])
    with pytest.raises(GuardrailError, match="Newtonsoft.Json.dll"):
        guardrails.check_split(client, "third_party", "app", ["Shop.*"])


def test_app_not_built_on_third_party_is_refused(daemon):
    client, images = daemon
    images.update(third_party=THIRD_PARTY, app=RUNTIME + [["app/Shop.Api.dll"]])
    with pytest.raises(GuardrailError, match="not built on the third-party image"):
        guardrails.check_split(client, "third_party", "app", ["Shop.*"])


@pytest.mark.parametrize("path, rule", [
    ("src/Shop.Api/Program.cs", "*.cs"),
    ("src/Shop.Api/Shop.Api.csproj", "*.csproj"),
    ("work/.git/config", ".git/"),
    ("app/main.go", "*.go"),
])
def test_source_files_are_refused_naming_file_layer_and_rule(daemon, path, rule):
    client, images = daemon
    images["leaky"] = APP + [[path]]
    with pytest.raises(GuardrailError) as error:
        guardrails.check_no_source(client, "leaky", list(guardrails.DEFAULT_SOURCE_PATTERNS), "leaky -> public")
    message = str(error.value)
    assert f"/{path}" in message and f"source pattern {rule}" in message
    assert diff_id([path])[:19] in message


def test_compiled_output_is_not_source(daemon):
    client, images = daemon
    images["app"] = APP
    guardrails.check_no_source(client, "app", list(guardrails.DEFAULT_SOURCE_PATTERNS), "app")


def test_an_image_built_on_the_artifacts_image_is_refused(daemon):
    client, images = daemon
    artifacts = [["bin/sh"], ["src/Program.cs"], ["publish/Shop.Api.dll"]]
    images.update(artifacts=artifacts, sneaky=artifacts + [["app/x"]], fine=[["bin/sh"], ["app/Shop.Api.dll"]])
    with pytest.raises(GuardrailError, match="artifacts image's layers"):
        guardrails.check_not_built_on(client, "sneaky", "artifacts", "sneaky")
    guardrails.check_not_built_on(client, "fine", "artifacts", "fine")  # shares only the base layer
