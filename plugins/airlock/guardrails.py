"""Guardrails that read the image's layers instead of trusting names.

- the split: third-party holds none of the company's own files; app is exactly third-party's
  layers plus layers that hold only own files;
- no source code: no layer of an image about to leave dev (for public or, via the cleanroom,
  for prod-private) holds a file matching the project's source patterns;
- the artifacts image is never pushed: not by its ID, and not inside another image.

Plain functions over a docker-py APIClient; every refusal names the file, the layer and the rule.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from docker import APIClient

from airlock.exceptions import AirlockError

DEFAULT_SOURCE_PATTERNS = ("*.cs", "*.csproj", "*.sln", "*.java", "*.go", ".git/")


class GuardrailError(AirlockError):
    """An image breaks one of Airlock's rules. Never retried: the build must change."""

    retryable = False


@dataclass(frozen=True)
class Finding:
    path: str
    layer: str  # the layer's diff ID (sha256 of its uncompressed tar)
    rule: str

    def __str__(self) -> str:
        return f"/{self.path} in layer {self.layer[:19]}… ({self.rule})"


def diff_ids(client: APIClient, image: str) -> list[str]:
    return list(client.inspect_image(image)["RootFS"]["Layers"])


def layer_files(client: APIClient, image: str, skip: int = 0) -> Iterable[tuple[str, list[str]]]:
    """(diff ID, regular file and directory paths) for each layer of `image` after the first `skip`."""
    ids = diff_ids(client, image)
    with tempfile.TemporaryFile(prefix="airlock-image-") as saved:
        for chunk in client.get_image(image):
            saved.write(chunk)
        saved.seek(0)
        with tarfile.open(fileobj=saved) as archive:
            manifest = json.load(archive.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
            for index, (layer_path, diff_id) in enumerate(zip(manifest["Layers"], ids, strict=True)):
                if index < skip:
                    continue
                member = archive.extractfile(layer_path)
                assert member is not None
                with tarfile.open(fileobj=member, mode="r|") as layer:
                    paths = [m.name.removeprefix("./") for m in layer
                             if not os.path.basename(m.name).startswith(".wh.")]
                yield diff_id, paths


def matches(path: str, patterns: Iterable[str]) -> str | None:
    """The first pattern that `path` matches: by file name, or by a folder name for patterns ending in '/'."""
    name = os.path.basename(path.rstrip("/"))
    parts = path.strip("/").split("/")
    for pattern in patterns:
        if pattern.endswith("/"):
            if pattern.rstrip("/") in parts:
                return pattern
        elif fnmatch.fnmatchcase(name, pattern):
            return pattern
    return None


def _fail(what: str, findings: list[Finding], reference: str, advice: str) -> None:
    shown = "; ".join(str(f) for f in findings[:10])
    more = f" and {len(findings) - 10} more" if len(findings) > 10 else ""
    raise GuardrailError(what, reference=reference, cause=f"{shown}{more}", advice=advice)


def check_split(client: APIClient, third_party: str, app: str, own_patterns: list[str]) -> int:
    """Third-party holds no own files; app = third-party's layers + layers of own files only.

    Returns the number of own-code layers in app."""
    own = list(own_patterns)
    findings = [Finding(path, layer, f"own-code pattern {rule}")
                for layer, paths in layer_files(client, third_party)
                for path in paths if (rule := matches(path, own))]
    if findings:
        _fail("the third-party image holds the company's own files", findings, third_party,
              "Fix the artifacts stage's split (own_files patterns) so these files land in /sensitive.")
    base, top = diff_ids(client, third_party), diff_ids(client, app)
    if top[:len(base)] != base:
        raise GuardrailError("the app image is not built on the third-party image", reference=app,
                             cause="its first layers differ from the third-party image's",
                             advice="app.dockerfile must start FROM ${THIRD_PARTY_IMAGE}.")
    findings = []
    for layer, paths in layer_files(client, app, skip=len(base)):
        for path in paths:
            folder = any(p.startswith(path.rstrip("/") + "/") for p in paths)
            if not folder and not matches(path, own):
                findings.append(Finding(path, layer, f"not an own-code file ({', '.join(own)})"))
    if findings:
        _fail("the app image's own layers hold files that are not the company's own", findings, app,
              "app.dockerfile should only add /sensitive (the own files) on top of third-party.")
    return len(top) - len(base)


def check_no_source(client: APIClient, image: str, patterns: list[str], reference: str) -> None:
    findings = [Finding(path, layer, f"source pattern {rule}")
                for layer, paths in layer_files(client, image)
                for path in paths if (rule := matches(path, patterns))]
    if findings:
        _fail("refused: the image holds source code", findings, reference,
              "Source must not leave dev: fix the Dockerfiles so only compiled output is copied, or adjust "
              "the project's source_files patterns if these files are not source.")


def check_not_built_on(client: APIClient, image: str, artifacts: str, reference: str) -> None:
    """Refuse an image that carries any of the artifacts image's own layers (beyond a shared base)."""
    try:
        forbidden = diff_ids(client, artifacts)
    except Exception:  # the artifacts image is gone already: nothing to compare with
        return
    layers = diff_ids(client, image)
    shared = 0
    while shared < min(len(forbidden), len(layers)) and forbidden[shared] == layers[shared]:
        shared += 1
    leaked = [d for d in forbidden[shared:] if d in layers]
    if shared == len(forbidden) or leaked:
        raise GuardrailError("refused: the image contains the artifacts image's layers (source and build "
                             "output)", reference=reference,
                             cause=f"layer {(leaked or forbidden[-1:])[0][:19]}… of the artifacts image",
                             advice="Only copy /publish or /sensitive from the artifacts stage; never build FROM it.")
