"""An image travels through the real sandbox: dev -> dev-private -> cleanroom -> link -> prod-private -> prod."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import urllib.request
import uuid

import docker

from sandbox import images, services
from sandbox.__main__ import link_request
from sandbox.layout import Layout


def build_context(marker: str) -> io.BytesIO:
    dockerfile = (f"FROM {images.BUSYBOX_IMAGE}\n"
                  f"RUN echo {marker} > /marker && head -c 300000 /dev/urandom > /payload\n"
                  'CMD ["cat", "/marker"]\n').encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    return buffer


def push(client: docker.DockerClient, repository: str, tag: str, auth: dict) -> str:
    digest = ""
    for chunk in client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        assert "error" not in chunk, chunk
        digest = chunk.get("aux", {}).get("Digest", digest)
    assert digest.startswith("sha256:")
    return digest


def read_manifest(registry: str, repository: str, reference: str, auth: dict) -> dict:
    login = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
    request = urllib.request.Request(f"http://{registry}/v2/{repository}/manifests/{reference}",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json",
                                              "Authorization": f"Basic {login}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_image_travels_through_all_three_zones_and_the_link(layout: Layout, zones):
    marker = f"smoke-{uuid.uuid4().hex[:8]}"
    auth = services.registry_credentials(layout)
    dev_private = layout.registry_address("dev-private")
    via_link = layout.registry_address("prod-private", seen_from="cleanroom")
    prod_private = layout.registry_address("prod-private", seen_from="prod")

    image, _ = zones["dev"].images.build(fileobj=build_context(marker), custom_context=True,
                                         tag=f"{dev_private}/smoke/app:{marker}", network_mode="none")
    built_digest = push(zones["dev"], f"{dev_private}/smoke/app", marker, auth)

    zones["cleanroom"].images.pull(f"{dev_private}/smoke/app@{built_digest}", auth_config=auth)
    zones["cleanroom"].api.tag(f"{dev_private}/smoke/app@{built_digest}", f"{via_link}/smoke/app", marker)
    link_request(layout, "/reset", {})
    promoted_digest = push(zones["cleanroom"], f"{via_link}/smoke/app", marker, auth)
    link = link_request(layout, "/stats")
    assert promoted_digest == built_digest

    # prod-private (read directly, not through the link) now holds the same manifest, and the
    # new top layer, which no registry had before, crossed the link: its bytes are on the counter.
    manifest = read_manifest(prod_private, "smoke/app", built_digest, auth)
    assert manifest == read_manifest(dev_private, "smoke/app", built_digest, auth)
    assert link["bytes_up"] >= manifest["layers"][-1]["size"] > 300_000 * 0.9

    zones["prod"].images.pull(f"{prod_private}/smoke/app@{built_digest}", auth_config=auth)
    output = zones["prod"].containers.run(f"{prod_private}/smoke/app@{built_digest}", remove=True,
                                          network_mode="none")
    assert output.decode().strip() == marker
    assert image.id in {i.id for i in zones["dev"].images.list()}
