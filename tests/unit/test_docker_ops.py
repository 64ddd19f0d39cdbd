"""Reading docker-py streams: every error chunk is a failure, for build, push and pull alike."""

from unittest import mock

import pytest
from docker import APIClient

from airlock import docker_ops
from airlock.exceptions import DockerStreamError

DIGEST = "sha256:" + "b" * 64


def push_stream(*extra):
    return [
        {"status": "The push refers to repository [127.0.0.1:5001/shop/app]"},
        {"status": "Preparing", "id": "aaa"},
        {"status": "Pushing", "id": "aaa", "progressDetail": {"current": 512, "total": 1024}},
        {"status": "Pushed", "id": "aaa"},
        {"status": "Layer already exists", "id": "bbb"},
        {"status": "Mounted from shop/third-party", "id": "ccc"},
        *extra,
    ]


def test_push_stream_read_to_the_end():
    stream = push_stream({"status": f"1: digest: {DIGEST} size: 1569"},
                         {"progressDetail": {}, "aux": {"Tag": "1", "Digest": DIGEST, "Size": 1569}})
    report = docker_ops.consume_push(stream, hop="dev.push_app_dev_private", where="dev-private", reference="x")
    assert report.digest == DIGEST
    assert (report.layers_sent, report.layers_present, report.layers_mounted) == (["aaa"], ["bbb"], ["ccc"])
    assert report.bytes_reported == 1024


def test_an_error_chunk_after_progress_fails_the_push():
    stream = push_stream({"errorDetail": {"message": "unauthorized: authentication required"},
                          "error": "unauthorized: authentication required"})
    with pytest.raises(DockerStreamError) as error:
        docker_ops.consume_push(stream, hop="dev.push_app_dev_private", where="dev-private registry",
                                reference="127.0.0.1:5001/shop/app:1")
    assert error.value.retryable is False
    message = str(error.value)
    assert "dev.push_app_dev_private" in message and "dev-private registry" in message
    assert "127.0.0.1:5001/shop/app:1" in message and "fix the registry's Airflow connection" in message


def test_a_dropped_connection_is_retryable():
    stream = push_stream({"error": "Patch http://127.0.0.1:6003/v2/shop/app/blobs/uploads/x: connection reset by peer"})
    with pytest.raises(DockerStreamError) as error:
        docker_ops.consume_push(stream, hop="h", where="w", reference="r")
    assert error.value.retryable is True
    assert "retry is safe" in str(error.value)


def test_a_push_stream_without_digest_is_not_success():
    with pytest.raises(DockerStreamError):
        docker_ops.consume_push(push_stream(), hop="h", where="w", reference="r")


def test_build_stream_returns_the_image_id_and_fails_on_errors():
    ok = [{"stream": "Step 1/2 : FROM scratch\n"}, {"aux": {"ID": DIGEST}}, {"stream": "Successfully built\n"}]
    assert docker_ops.consume_build(ok, hop="build.app", where="dev", reference="shop/app:1") == DIGEST
    failing = [{"stream": "Step 2/2 : RUN make\n"},
               {"error": "The command '/bin/sh -c make' returned a non-zero code: 2",
                "errorDetail": {"code": 2, "message": "The command '/bin/sh -c make' returned a non-zero code: 2"}}]
    with pytest.raises(DockerStreamError) as error:
        docker_ops.consume_build(failing, hop="build.app", where="dev", reference="shop/app:1")
    assert "non-zero code: 2" in str(error.value) and error.value.retryable is False


def test_pull_stream_error_fails_the_pull():
    stream = [{"status": "Pulling from shop/app", "id": "1"},
              {"error": "manifest for 127.0.0.1:5003/shop/app@sha256:x not found: manifest unknown"}]
    with pytest.raises(DockerStreamError):
        docker_ops.consume_pull(stream, hop="prod.deploy", where="prod-private", reference="r")


def test_push_passes_credentials_per_call_and_reads_the_stream():
    client = mock.create_autospec(APIClient, instance=True)
    client.push.return_value = iter(push_stream({"aux": {"Digest": DIGEST}}))
    auth = {"username": "u", "password": "p", "serveraddress": "127.0.0.1:5001"}
    report = docker_ops.push(client, repository="127.0.0.1:5001/shop/app", tag="1", auth_config=auth,
                             hop="h", where="w")
    client.push.assert_called_once_with("127.0.0.1:5001/shop/app", tag="1", stream=True, decode=True,
                                        auth_config=auth)
    assert report.digest == DIGEST


def test_a_full_registry_says_to_free_space():
    stream = push_stream({"error": "filesystem: write /var/lib/registry/x: no space left on device"})
    with pytest.raises(DockerStreamError) as error:
        docker_ops.consume_push(stream, hop="dev.push_third_party_public", where="public registry 127.0.0.1:5002",
                                reference="127.0.0.1:5002/shop/third-party:1")
    assert "out of disk space: free space, then clear the task to retry" in str(error.value)
