"""A failed run leaves prod as it was: release 1 stays what prod-private serves and what runs.

Release 1 is promoted and deployed; release 2 is then broken at the cleanroom push, the prod
push and the deploy, and after each the registries and the prod daemon are checked."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airlock.operators import DeployOperator, PushImageOperator
from sandbox.__main__ import link_request
from sandbox.layout import Layout
from sandbox.promotion import FakeTI, Project, run_task, use_sandbox_connections


def deploy(project: Project, digest: str, release: str, health: list[str]) -> DeployOperator:
    return DeployOperator(
        task_id="prod.deploy", zone="prod", zone_conn_id="airlock_zone_prod", digest=digest, release=release,
        project=project.name, repository=project.app, container_name=project.name, command=["sleep", "3600"],
        network_mode="none", health={"command": health, "interval_s": 0.5, "retries": 2, "wait_s": 30},
        registry="prod-private", registry_address=project.layout.registry_address("prod-private"),
        registry_conn_id="airlock_registry_prod_private", registry_scheme="http")


@pytest.fixture
def released(layout: Layout, zones):
    """Release 1 promoted (relay) and running in prod; release 2 built and in dev-private."""
    use_sandbox_connections(layout)
    project = Project(layout, zones)
    r1, _ = project.release("r1", dependency_kb=64, own_kb=256, seed="one")
    project.promote("relay", r1, "r1")
    run_task(deploy(project, r1, "r1", ["true"]), FakeTI())
    r2, _ = project.release("r2", dependency_kb=128, own_kb=256, seed="two")
    yield project, r1, r2
    link_request(layout, "/settings", {"drop_every_bytes": None, "refuse_for_s": 0})
    for container in zones["prod"].containers.list(all=True, filters={"name": project.name}):
        container.remove(force=True)


def assert_release_1_in_prod(project: Project, r1: str) -> None:
    prod = project.registry("prod-private")
    assert prod.get_manifest(project.app, "r1").digest == r1
    assert "r2" not in prod.tags(project.app)
    container = project.zones["prod"].containers.get(project.name)
    assert container.status == "running"
    assert container.labels["airlock.digest"] == r1
    assert project.zones["prod"].api.inspect_container(container.id)["State"]["Health"]["Status"] == "healthy"


def test_broken_at_the_cleanroom_push(released, layout: Layout):
    project, r1, r2 = released
    fetch, push, _ = project.relay_tasks(r2, "r2")
    ti = FakeTI()
    run_task(fetch, ti)
    link_request(layout, "/settings", {"refuse_for_s": 30})  # the link goes down
    with pytest.raises(AirflowException) as error:
        run_task(push, ti)
    message = str(error.value)
    assert not isinstance(error.value, AirflowFailException)  # transient: Airflow will retry
    assert "cleanroom.push_app_prod_private" in message and "prod-private" in message
    assert "A retry may help" in message
    assert_release_1_in_prod(project, r1)


def test_broken_at_the_prod_push(released, layout: Layout):
    project, r1, r2 = released
    # prod-private refuses the third-party push: here, because the image is not the digest built.
    push = PushImageOperator(
        task_id="prod.push_third_party_prod_private", zone="prod", zone_conn_id="airlock_zone_prod",
        image=f"{layout.registry_address('public')}/{project.third_party}:r2", release="r2",
        expect_digest="sha256:" + "0" * 64, repository=project.third_party, registry="prod-private",
        registry_address=layout.registry_address("prod-private"), registry_conn_id="airlock_registry_prod_private",
        registry_scheme="http")
    project.zones["prod"].images.pull(f"{layout.registry_address('public')}/{project.third_party}", tag="r2",
                                      auth_config=project.auth)
    with pytest.raises(AirflowFailException, match="does not have the digest that was built"):
        run_task(push, FakeTI())
    assert_release_1_in_prod(project, r1)


def test_broken_at_the_deploy(released):
    project, r1, r2 = released
    project.promote("relay", r2, "r2")
    with pytest.raises(AirflowFailException) as error:
        run_task(deploy(project, r2, "r2", ["false"]), FakeTI())
    assert "did not become healthy" in str(error.value) and "previous release was restored" in str(error.value)
    container = project.zones["prod"].containers.get(project.name)
    assert container.labels["airlock.digest"] == r1 and container.status == "running"
    assert project.zones["prod"].api.inspect_container(container.id)["State"]["Health"]["Status"] == "healthy"
    assert not project.zones["prod"].containers.list(all=True, filters={"name": f"{project.name}-previous"})
