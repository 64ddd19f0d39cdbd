import pytest

from airlock.exceptions import ImageReferenceError
from airlock.refs import ImageRef

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("127.0.0.1:5001/hello/app:1.0", "127.0.0.1:5001", "hello/app", "1.0", None),
    (f"127.0.0.1:5001/hello/app@{DIGEST}", "127.0.0.1:5001", "hello/app", None, DIGEST),
    (f"registry.example.com/team/x/app:v2@{DIGEST}", "registry.example.com", "team/x/app", "v2", DIGEST),
    ("localhost/app", "localhost", "app", None, None),
    ("[::1]:5000/app:latest", "[::1]:5000", "app", "latest", None),
])
def test_parse(text, registry, repository, tag, digest):
    ref = ImageRef.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == text


def test_digest_wins_over_tag_when_moving_an_image():
    ref = ImageRef.parse(f"127.0.0.1:5001/hello/app:1.0@{DIGEST}")
    assert ref.pinned == f"127.0.0.1:5001/hello/app@{DIGEST}"
    assert ImageRef.parse("127.0.0.1:5001/hello/app:1.0").pinned == "127.0.0.1:5001/hello/app:1.0"


def test_same_image_seen_from_another_zone_keeps_its_digest():
    ref = ImageRef.parse(f"127.0.0.1:5003/hello/app@{DIGEST}").at("127.0.0.1:6003")
    assert ref.pinned == f"127.0.0.1:6003/hello/app@{DIGEST}"


@pytest.mark.parametrize("text", [
    "hello/app:1.0",                      # no registry
    "127.0.0.1:5001/Hello/App:1",         # uppercase repository
    "127.0.0.1:5001/hello/app@sha256:123",  # short digest
    "127.0.0.1:5001/hello/app:bad tag",
    "127.0.0.1:5001/hello//app",
])
def test_invalid_references_are_refused_with_the_reason(text):
    with pytest.raises(ImageReferenceError) as error:
        ImageRef.parse(text)
    assert "Retrying will not help" in str(error.value)


def test_references_are_immutable():
    ref = ImageRef.parse("127.0.0.1:5001/hello/app:1")
    with pytest.raises(AttributeError):
        ref.tag = "2"  # type: ignore[misc]
