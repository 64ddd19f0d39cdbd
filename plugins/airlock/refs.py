"""Image references, parsed once: registry/repository[:tag][@digest].

The digest is the truth; a tag is a name for people. When both are present, everything that
moves an image uses the digest (`ImageRef.pinned`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from airlock.exceptions import ImageReferenceError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_REGISTRY = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$")


def is_digest(value: str) -> bool:
    return bool(_DIGEST.match(value))


def is_tag(value: str) -> bool:
    return bool(_TAG.match(value))


def is_repository(value: str) -> bool:
    return bool(_REPOSITORY.match(value)) and len(value) <= 255


def is_registry(value: str) -> bool:
    return bool(_REGISTRY.match(value))


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port], as seen from the zone that uses this reference
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if not is_registry(self.registry):
            raise ImageReferenceError(f"registry address {self.registry!r} is not host[:port]")
        if not is_repository(self.repository):
            raise ImageReferenceError(f"repository {self.repository!r} is not a valid name "
                                      "(lowercase letters, digits, separators . _ - and /)")
        if self.tag is not None and not is_tag(self.tag):
            raise ImageReferenceError(f"tag {self.tag!r} is not valid (letters, digits, _ . -; at most 128)")
        if self.digest is not None and not is_digest(self.digest):
            raise ImageReferenceError(f"digest {self.digest!r} is not sha256:<64 hex digits>")

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse 'host:port/repo/name:tag@sha256:...'. The registry part is required."""
        rest, _, digest = text.partition("@")
        registry, slash, path = rest.partition("/")
        if not slash or not ("." in registry or ":" in registry or registry == "localhost"):
            raise ImageReferenceError(f"image reference {text!r} has no registry host "
                                      "(expected host[:port]/repository[:tag][@digest])")
        repository, colon, tag = path.rpartition(":")
        if not colon or "/" in tag:
            repository, tag = path, ""
        return cls(registry=registry, repository=repository, tag=tag or None, digest=digest or None)

    @property
    def name(self) -> str:
        """registry/repository, what docker-py calls the repository."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> str:
        """The reference to move the image by: by digest when known, else by tag."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"

    def with_digest(self, digest: str) -> ImageRef:
        return replace(self, digest=digest)

    def with_tag(self, tag: str | None) -> ImageRef:
        return replace(self, tag=tag)

    def at(self, registry: str) -> ImageRef:
        """The same image in another registry (or the same registry seen from another zone)."""
        return replace(self, registry=registry)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
