"""An image travels through the real sandbox: dev -> dev-private -> cleanroom -> link -> prod-private -> prod."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid

from sandbox import images, services
from sandbox.__main__ import link_request
from sandbox.layout import Layout
from sandbox.promotion import build, push


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

    image_id = build(zones["dev"], f"FROM {images.BUSYBOX_IMAGE}\n"
                                  f"RUN echo {marker} > /marker && head -c 300000 /dev/urandom > /payload\n"
                                  'CMD ["cat", "/marker"]\n', f"{dev_private}/smoke/app:{marker}")
    built_digest = push(zones["dev"], f"{dev_private}/smoke/app", marker, auth)
    assert built_digest.startswith("sha256:")

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
    assert image_id in {i.id for i in zones["dev"].images.list()}
