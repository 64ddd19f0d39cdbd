"""Operators against a spec'd docker-py client: Airflow glue, refusal rules, idempotency, deploy rollback."""

from unittest import mock

import docker.errors
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from docker import APIClient

from airlock.hooks import RegistryHook, ZoneDockerHook
from airlock.operators import DeployOperator, PushImageOperator, RemoveImageOperator
from airlock.registry import Manifest, RegistryClient

DIGEST = "sha256:" + "c" * 64
APP_ID = "sha256:" + "1" * 64
ARTIFACTS_ID = "sha256:" + "2" * 64


@pytest.fixture
def client():
    client = mock.create_autospec(APIClient, instance=True)
    with mock.patch.object(ZoneDockerHook, "get_conn", return_value=client), \
            mock.patch.object(ZoneDockerHook, "base_url", "unix:///run/test.sock"):
        yield client


@pytest.fixture
def registry():
    registry = mock.create_autospec(RegistryClient, instance=True)
    with mock.patch.object(RegistryHook, "get_conn", return_value=registry), \
            mock.patch.object(RegistryHook, "auth_config", return_value=None):
        yield registry


def context():
    return {"ti": mock.MagicMock()}


def push_operator(**kwargs):
    defaults = dict(task_id="push_app_dev_private", zone="dev", zone_conn_id="airlock_zone_dev",
                    image="airlock-local/shop/app:1", release="1", registry="dev-private",
                    registry_address="127.0.0.1:5001", registry_conn_id=None, repository="shop/app",
                    refuse=["airlock-local/shop/artifacts:1"])
    return PushImageOperator(**{**defaults, **kwargs})


def test_hooks_do_no_io_in_init():
    with mock.patch.object(ZoneDockerHook, "get_connection", side_effect=AssertionError("I/O in __init__")), \
            mock.patch.object(RegistryHook, "get_connection", side_effect=AssertionError("I/O in __init__")):
        ZoneDockerHook(zone="dev", zone_conn_id="airlock_zone_dev")
        RegistryHook(registry="public", address="127.0.0.1:5002", registry_conn_id="airlock_registry_public")


def test_operators_store_their_arguments_unchanged():
    op = push_operator(release="{{ params.release }}")
    assert op.release == "{{ params.release }}"
    assert op.refuse == ["airlock-local/shop/artifacts:1"]


def test_push_refuses_the_artifacts_image_whatever_it_is_tagged(client, registry):
    client.inspect_image.return_value = {"Id": ARTIFACTS_ID}  # app tag points at the artifacts image
    with pytest.raises(AirflowFailException) as error:
        push_operator().execute(context())
    assert "refused to push the artifacts image" in str(error.value)
    client.push.assert_not_called()


def test_push_returns_the_digest_from_the_stream(client, registry):
    client.inspect_image.side_effect = lambda ref: {"Id": APP_ID if "app" in ref else ARTIFACTS_ID}
    client.push.return_value = iter([{"status": "Pushed", "id": "a"}, {"aux": {"Digest": DIGEST}}])
    registry.get_manifest.return_value = Manifest(DIGEST, "application/json", b'{"layers": [{"digest": "x"}]}')
    ctx = context()
    assert push_operator().execute(ctx) == DIGEST
    client.tag.assert_called_once_with(APP_ID, "127.0.0.1:5001/shop/app", "1", force=True)
    ctx["ti"].xcom_push.assert_any_call(key="layers", value=["x"])


def test_a_promotion_already_done_sends_nothing(client, registry):
    manifest = Manifest(DIGEST, "application/vnd.docker.distribution.manifest.v2+json", b"{}")
    registry.get_manifest.return_value = manifest
    op = push_operator(task_id="push_app_prod_private", zone="cleanroom", expect_digest=DIGEST,
                       image=f"127.0.0.1:5001/shop/app@{DIGEST}", registry="prod-private",
                       registry_address="127.0.0.1:6003", refuse=[])
    assert op.execute(context()) == DIGEST
    client.push.assert_not_called()
    registry.put_manifest.assert_not_called()


def test_a_transient_failure_lets_airflow_retry(client, registry):
    registry.get_manifest.return_value = None
    client.inspect_image.return_value = {"Id": APP_ID}
    client.push.return_value = iter([{"error": "write tcp 127.0.0.1:6003: connection reset by peer"}])
    op = push_operator(expect_digest=DIGEST, refuse=[])
    with pytest.raises(AirflowException) as error:
        op.execute(context())
    assert not isinstance(error.value, AirflowFailException)


def test_remove_artifacts_when_there_is_nothing_to_remove(client):
    client.inspect_image.side_effect = docker.errors.ImageNotFound("gone")
    op = RemoveImageOperator(task_id="remove_artifacts", zone="dev", zone_conn_id="z",
                             image="airlock-local/shop/artifacts:1")
    assert op.execute(context()) == ""
    client.remove_image.assert_not_called()


def deploy_operator():
    return DeployOperator(task_id="deploy", zone="prod", zone_conn_id="airlock_zone_prod", digest=DIGEST,
                          release="2", project="shop", repository="shop/app", container_name="shop",
                          registry="prod-private", registry_address="127.0.0.1:5003", registry_conn_id=None,
                          health={"wait_s": 5})


def test_deploy_restores_the_previous_release_when_the_new_one_is_unhealthy(client, registry):
    previous = {"Id": "old", "Config": {"Labels": {"airlock.digest": "sha256:" + "0" * 64,
                                                    "airlock.release": "1"}},
                "State": {"Running": True, "Health": {"Status": "healthy"}}}
    unhealthy = {"Id": "new", "State": {"Running": True, "Health": {"Status": "unhealthy",
                                                                     "Log": [{"Output": "connection refused"}]}}}

    def inspect_container(name):
        if name == "shop":
            return previous
        if name == "new":
            return unhealthy
        raise docker.errors.NotFound("no such container")

    client.inspect_container.side_effect = inspect_container
    client.inspect_image.return_value = {"Id": APP_ID}
    client.create_container.return_value = {"Id": "new"}
    client.logs.return_value = b"listening\n"
    with pytest.raises(AirflowFailException) as error:
        deploy_operator().execute(context())
    assert "did not become healthy (unhealthy)" in str(error.value)
    assert "previous release was restored" in str(error.value)
    client.remove_container.assert_called_with("new", force=True)
    client.rename.assert_has_calls([mock.call("old", "shop-previous"), mock.call("shop-previous", "shop")])
    client.start.assert_called_with("shop")


def test_deploy_removes_the_previous_release_only_after_the_new_one_is_healthy(client, registry):
    previous = {"Id": "old", "Config": {"Labels": {"airlock.digest": "sha256:" + "0" * 64}},
                "State": {"Running": True, "Health": {"Status": "healthy"}}}
    healthy = {"Id": "new", "State": {"Running": True, "Health": {"Status": "healthy"}}}
    client.inspect_container.side_effect = lambda name: {"shop": previous, "new": healthy}.get(name) or (
        _ for _ in ()).throw(docker.errors.NotFound("none"))
    client.inspect_image.return_value = {"Id": APP_ID}
    client.create_container.return_value = {"Id": "new"}
    assert deploy_operator().execute(context()) == DIGEST
    calls = [c[0] for c in client.method_calls if c[0] in ("start", "remove_container")]
    assert calls == ["start", "remove_container"]
    client.remove_container.assert_called_once_with("shop-previous", force=True)


def test_a_registry_that_is_down_is_named_and_retryable():
    from airlock.exceptions import RegistryError

    client = RegistryClient("127.0.0.1:9", scheme="http", name="prod-private", timeout=2)
    with pytest.raises(RegistryError) as error:
        client.has_manifest("shop/app", DIGEST)
    message = str(error.value)
    assert error.value.retryable is True
    assert "cannot reach the registry at prod-private (http://127.0.0.1:9)" in message
    assert f"127.0.0.1:9/shop/app@{DIGEST}" in message and "A retry may help" in message


def test_an_unreachable_daemon_fails_the_hop_with_the_zone_and_a_retry(tmp_path):
    hook = ZoneDockerHook(zone="prod", zone_conn_id="airlock_zone_prod", timeout=2)
    conn = mock.Mock(extra_dejson={"base_url": f"unix://{tmp_path}/missing.sock"}, host=None)
    op = RemoveImageOperator(task_id="remove_artifacts", zone="prod", zone_conn_id="airlock_zone_prod",
                             image="airlock-local/shop/artifacts:1")
    with mock.patch.object(ZoneDockerHook, "get_connection", return_value=conn), \
            mock.patch.object(RemoveImageOperator, "zone_hook", return_value=hook):
        with pytest.raises(AirflowException) as error:
            op.execute(context())
    message = str(error.value)
    assert not isinstance(error.value, AirflowFailException)
    assert "cannot reach the prod zone's Docker daemon" in message and "missing.sock" in message


def test_a_refused_login_is_not_retried(client, registry):
    client.inspect_image.side_effect = lambda ref: {"Id": APP_ID if "app" in ref else ARTIFACTS_ID}
    client.push.return_value = iter([{"status": "Preparing", "id": "a"},
                                     {"error": "unauthorized: authentication required"}])
    with pytest.raises(AirflowFailException) as error:
        push_operator().execute(context())
    assert "fix the registry's Airflow connection" in str(error.value)


def test_a_run_that_does_not_build_finds_the_release_in_the_registry(client, registry):
    registry.get_manifest.return_value = Manifest(DIGEST, "application/json", b'{"layers": [{"digest": "x"}]}')
    ctx = {**context(), "params": {"part": "promote an existing release"}}
    assert push_operator(resolve_when_not_building=True).execute(ctx) == DIGEST
    client.push.assert_not_called()
    registry.get_manifest.return_value = None
    with pytest.raises(AirflowFailException, match="release 1 is not in the dev-private registry"):
        push_operator(resolve_when_not_building=True).execute(ctx)
