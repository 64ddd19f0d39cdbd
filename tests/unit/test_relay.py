"""The relay's resume logic against a fake registry that follows the spec's upload status."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from unittest import mock

import pytest

from airlock import relay
from airlock.exceptions import RegistryError
from airlock.registry import Manifest, RegistryClient

from .fake_registry import FakeRegistry

KB = 1024


@pytest.fixture
def registry():
    fake = FakeRegistry()
    yield fake
    fake.close()


@pytest.fixture
def blob(tmp_path: Path) -> tuple[relay.BlobCache, relay.Blob, bytes]:
    data = os.urandom(300 * KB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    cache = relay.BlobCache(tmp_path / "cache")
    cache.put_bytes(digest, data)
    return cache, relay.Blob(digest, len(data)), data


@pytest.fixture(autouse=True)
def no_pauses():
    with mock.patch.object(relay, "_pause"):
        yield


def client(registry: FakeRegistry) -> RegistryClient:
    return RegistryClient(registry.address, scheme="http", name="fake", timeout=5)


def test_native_upload_in_chunks(registry, blob):
    cache, item, data = blob
    report = relay.LinkReport()
    relay.send_native(client(registry), "repo", item, cache, 64 * KB, report)
    assert registry.blobs[item.digest] == data
    assert report.chunks_sent == 5 and report.retries == 0
    assert registry.received == len(data)


def test_native_upload_resumes_at_the_offset_that_arrived(registry, blob):
    cache, item, data = blob
    registry.cut_patch_after, registry.cuts_left = 20 * KB, 3  # three PATCHes cut after 20 KB each
    report = relay.LinkReport()
    relay.send_native(client(registry), "repo", item, cache, 64 * KB, report)
    assert registry.blobs[item.digest] == data
    assert report.retries == 3 and report.resumes == 3
    # What arrived before each cut was kept and not sent again.
    assert registry.received == len(data)


def test_native_upload_resumes_across_task_retries(registry, blob):
    cache, item, data = blob
    registry.cut_patch_after, registry.cuts_left = 10 * KB, 100
    with mock.patch.object(relay, "MAX_ATTEMPTS_PER_CHUNK", 2), pytest.raises(RegistryError):
        relay.send_native(client(registry), "repo", item, cache, 64 * KB, relay.LinkReport())
    arrived = registry.received
    assert 0 < arrived < len(data)
    state = cache.upload_state(f"{registry.address}/repo@{item.digest}")
    assert state and state["location"]

    registry.cuts_left = 0  # the link is back; Airflow retries the task on the same worker
    report = relay.LinkReport()
    relay.send_native(client(registry), "repo", item, cache, 64 * KB, report)
    assert registry.blobs[item.digest] == data
    assert report.resumes == 1
    assert registry.received == len(data)  # nothing sent twice
    assert cache.upload_state(f"{registry.address}/repo@{item.digest}") is None


def test_native_upload_starts_afresh_when_the_session_is_gone(registry, blob):
    cache, item, data = blob
    cache.save_upload_state(f"{registry.address}/repo@{item.digest}",
                            {"location": f"http://{registry.address}/v2/repo/blobs/uploads/expired", "offset": 99})
    report = relay.LinkReport()
    relay.send_native(client(registry), "repo", item, cache, 128 * KB, report)
    assert registry.blobs[item.digest] == data
    assert report.resumes == 0


def test_staged_chunks_skip_what_already_arrived(registry, blob):
    cache, item, data = blob
    target = client(registry)
    first = relay.send_staged(target, "staging", item, cache, 100 * KB, relay.LinkReport())
    assert len(first) == 3 and all(c in registry.blobs for c in first)
    del registry.blobs[first[2]]  # as if the last chunk had been cut
    report = relay.LinkReport()
    assert relay.send_staged(target, "staging", item, cache, 100 * KB, report) == first
    assert (report.chunks_skipped, report.chunks_sent) == (2, 1)


def test_the_cache_refuses_content_that_does_not_match_its_digest(tmp_path: Path):
    cache = relay.BlobCache(tmp_path)
    with pytest.raises(Exception, match="does not match"):
        cache.put_bytes("sha256:" + "0" * 64, b"something else")
    assert not cache.has("sha256:" + "0" * 64)


def test_only_image_manifests_are_relayed():
    index = Manifest("sha256:" + "1" * 64, "application/vnd.oci.image.index.v1+json", b'{"manifests": []}')
    with pytest.raises(Exception, match="single-platform"):
        relay.blobs_of(index)
