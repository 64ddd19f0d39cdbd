"""The relay's resume logic against a fake registry that follows the spec's upload status."""

from __future__ import annotations

import hashlib
import json
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


class TokenRegistry:
    """A registry behind the bearer-token challenge flow (Docker Hub, Harbor): /v2/ answers 401 with
    WWW-Authenticate: Bearer realm=...; the realm hands out a token for the right basic-auth login."""

    def __init__(self) -> None:
        import base64
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.token_requests: list[str] = []
        outer = self
        good_login = "Basic " + base64.b64encode(b"ops:s3cret-pw").decode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, headers: dict | None = None, body: bytes = b"") -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    outer.token_requests.append(self.path)
                    if self.headers.get("Authorization") != good_login:
                        self._reply(401)
                    else:
                        self._reply(200, {"Content-Type": "application/json"}, b'{"token": "t0ken"}')
                    return
                self.do_HEAD()

            def do_HEAD(self) -> None:
                if self.headers.get("Authorization") != "Bearer t0ken":
                    realm = f"http://127.0.0.1:{outer.server.server_address[1]}/token"
                    self._reply(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake"'})
                else:
                    self._reply(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"


def test_bearer_token_flow_with_basic_login():
    from airlock.exceptions import RegistryAuthError

    fake = TokenRegistry()
    try:
        good = RegistryClient(fake.address, scheme="http", username="ops", password="s3cret-pw", name="hub")
        assert good.has_blob("team/app", "sha256:" + "a" * 64) is False  # answered, after the token dance
        assert "scope=repository%3Ateam%2Fapp%3Apull" in fake.token_requests[0]
        bad = RegistryClient(fake.address, scheme="http", username="ops", password="wrong", name="hub")
        with pytest.raises(RegistryAuthError) as error:
            bad.has_blob("team/app", "sha256:" + "a" * 64)
        assert error.value.retryable is False
        assert "wrong" not in str(error.value) and "s3cret" not in repr(bad)
    finally:
        fake.server.shutdown()


def test_falls_back_to_monolithic_when_chunks_are_refused(registry, blob):
    cache, item, data = blob
    registry.refuse_patch = True
    relay.send_native(client(registry), "repo", item, cache, 64 * KB, relay.LinkReport())
    assert registry.blobs[item.digest] == data


def test_falls_back_to_chunked_when_monolithic_is_refused(registry, blob):
    cache, item, data = blob
    registry.refuse_put_body = True
    chunks = relay.send_staged(client(registry), "staging", item, cache, 100 * KB, relay.LinkReport())
    assert all(c in registry.blobs for c in chunks)


def test_a_dry_run_plan_asks_questions_and_sends_nothing(registry, blob):
    cache, item, data = blob
    base = os.urandom(1000)
    base_digest = "sha256:" + hashlib.sha256(base).hexdigest()
    registry.blobs[base_digest] = base  # prod-private already holds the base layer (one namespace in the fake)
    body = {"config": {"digest": "sha256:" + "c" * 64, "size": 500},
            "layers": [{"digest": base_digest, "size": 1000}, {"digest": "sha256:" + "e" * 64, "size": 2000},
                       {"digest": item.digest, "size": item.size}]}
    manifest = Manifest("sha256:" + "f" * 64, "application/vnd.oci.image.manifest.v1+json",
                        json.dumps(body).encode())
    before = registry.received
    result = relay.plan(client(registry), "shop/app", manifest, ["shop/third-party"], own_layers=1)
    assert [r["action"] for r in result["blobs"]] == ["send", "present", "via_public", "send"]
    assert result["bytes_to_send"] == 500 + item.size + len(manifest.raw)
    assert registry.received == before and item.digest not in registry.blobs
