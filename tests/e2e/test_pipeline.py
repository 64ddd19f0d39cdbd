"""The hello project's DAG, run by a real Airflow scheduler on the real sandbox.

Asserts on what landed in the registries, the daemons and the running app, not on log text.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from airlock.registry import RegistryClient
from sandbox import services
from sandbox.__main__ import link_request
from sandbox.airflow_stack import AirflowStack
from sandbox.layout import Layout

PROJECT = "hello"
APP, THIRD_PARTY = "hello/app", "hello/third-party"


@pytest.fixture(scope="module")
def airflow(layout: Layout) -> Iterator[AirflowStack]:
    stack = AirflowStack(layout)
    started = stack.start() != "running"
    yield stack
    if started:
        stack.stop()


def registry(layout: Layout, name: str) -> RegistryClient:
    login = services.registry_credentials(layout)
    return RegistryClient(layout.registry_address(name), scheme="http", name=name, username=login["username"],
                          password=login["password"])


def project_repositories(client: RegistryClient) -> set[str]:
    return {repo for repo in client.catalog() if repo.startswith(f"{PROJECT}/")}


def blob_count(layout: Layout, name: str) -> int:
    blobs = layout.registry_storage(name) / "docker/registry/v2/blobs/sha256"
    return sum(1 for _ in blobs.glob("*/*")) if blobs.exists() else 0


def run_dag(airflow: AirflowStack, conf: dict | None = None) -> tuple[str, dict]:
    run_id = airflow.trigger(PROJECT, conf)
    run = airflow.wait_for_run(PROJECT, run_id, timeout=900)
    tasks = airflow.task_instances(PROJECT, run_id)
    failed = {task: ti["state"] for task, ti in tasks.items() if ti["state"] not in ("success", "skipped")}
    assert run["state"] == "success", f"run {run_id} {run['state']}; tasks not successful: {failed}"
    assert not failed
    return run_id, tasks


def hello_health() -> str:
    port = os.environ.get("AIRLOCK_HELLO_PORT", "18080")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return response.read().decode().strip()


def test_hello_builds_promotes_and_runs_then_a_second_run_sends_nothing(layout: Layout, airflow: AirflowStack,
                                                                        zones: dict[str, docker.DockerClient]):
    # -- first run ---------------------------------------------------------------------------
    run_id, tasks = run_dag(airflow)
    assert len(tasks) == 14
    app_digest = airflow.xcom(PROJECT, run_id, "dev.push_app_dev_private")
    third_party_digest = airflow.xcom(PROJECT, run_id, "dev.push_third_party_public")
    artifacts_id = airflow.xcom(PROJECT, run_id, "build.artifacts")
    assert app_digest.startswith("sha256:") and third_party_digest.startswith("sha256:")

    dev_private, public, prod_private = (registry(layout, n) for n in ("dev-private", "public", "prod-private"))
    assert project_repositories(dev_private) == {APP}
    assert project_repositories(public) == {THIRD_PARTY}
    assert project_repositories(prod_private) == {APP, THIRD_PARTY}

    # The same bytes everywhere: digests are the truth.
    app_in_dev = dev_private.get_manifest(APP, app_digest)
    app_in_prod = prod_private.get_manifest(APP, app_digest)
    third_party_in_public = public.get_manifest(THIRD_PARTY, third_party_digest)
    third_party_in_prod = prod_private.get_manifest(THIRD_PARTY, third_party_digest)
    assert app_in_dev and app_in_prod and third_party_in_public and third_party_in_prod
    assert app_in_prod.raw == app_in_dev.raw
    assert third_party_in_prod.raw == third_party_in_public.raw
    # app = third-party's layers + one thin layer of own files.
    assert app_in_prod.layers[:-1] == third_party_in_prod.layers
    assert len(app_in_prod.layers) == len(third_party_in_prod.layers) + 1

    # Nothing named or built as artifacts in any registry; the image is gone from dev.
    for client in (dev_private, public, prod_private):
        for repository in client.catalog():
            assert "artifacts" not in repository
            for tag in client.tags(repository):
                manifest = client.get_manifest(repository, tag)
                assert manifest is not None and manifest.config_digest != artifacts_id
    with pytest.raises(docker.errors.ImageNotFound):
        zones["dev"].images.get(artifacts_id)
    assert not [t for image in zones["dev"].images.list() for t in image.tags if "artifacts" in t]

    # The app runs in prod, from prod-private, by the digest built in dev, and answers.
    container = zones["prod"].containers.get(PROJECT)
    assert container.status == "running"
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    assert f"{layout.registry_address('prod-private')}/{APP}@{app_digest}" in container.image.attrs["RepoDigests"]
    assert hello_health().startswith("ok hello")

    # -- second run, nothing changed -----------------------------------------------------------
    blobs_before = {name: blob_count(layout, name) for name in ("dev-private", "public", "prod-private")}
    link_request(layout, "/reset", {})
    second_run_id, _ = run_dag(airflow)
    link = link_request(layout, "/stats")
    assert airflow.xcom(PROJECT, second_run_id, "dev.push_app_dev_private") == app_digest
    assert {name: blob_count(layout, name) for name in blobs_before} == blobs_before
    # Only registry chatter (manifest checks, a re-tag) crossed the link: no layer.
    assert link["bytes_up"] < 20_000, link
    assert zones["prod"].containers.get(PROJECT).id == container.id
    assert hello_health().startswith("ok hello")

    # The registries require a password: it appears in no task log and no XCom of either run.
    password = services.registry_credentials(layout)["password"]
    logs = list((airflow.home / "logs").rglob("*.log"))
    assert any("dag_id=hello" in str(path) for path in logs)
    for path in logs:
        assert password not in path.read_text(errors="replace"), path
    for run in (run_id, second_run_id):
        quoted = urllib.parse.quote(run, safe="")
        entries = airflow.api("GET", f"/dags/{PROJECT}/dagRuns/{quoted}/taskInstances/~/xcomEntries?limit=500")
        for entry in entries["xcom_entries"]:
            value = airflow.xcom(PROJECT, run, entry["task_id"], entry["key"])
            assert password not in json.dumps(value, default=str), entry


def test_a_dry_run_from_the_trigger_form_plans_and_changes_nothing_in_prod(layout: Layout, airflow: AirflowStack,
                                                                         zones: dict[str, docker.DockerClient]):
    running = zones["prod"].containers.get(PROJECT).id
    prod_tags = registry(layout, "prod-private").tags(APP)
    run_id, tasks = run_dag(airflow, {"dry_run": True, "release": "dry-run-1"})
    assert tasks["prod.deploy"]["state"] == "skipped" and tasks["verify"]["state"] == "skipped"
    assert tasks["prod.push_third_party_prod_private"]["state"] == "skipped"
    plan = airflow.xcom(PROJECT, run_id, "cleanroom.push_app_prod_private", "plan")
    assert plan["blobs_to_send"] == 0 and plan["bytes_to_send"] == 0  # nothing new since the last release
    assert registry(layout, "prod-private").tags(APP) == prod_tags  # no dry-run-1 tag in prod
    assert zones["prod"].containers.get(PROJECT).id == running

    # The release the dry run built can then be promoted without building again.
    run_id, tasks = run_dag(airflow, {"part": "promote an existing release", "release": "dry-run-1"})
    assert all(tasks[t]["state"] == "skipped" for t in ("build.artifacts", "build.third_party", "build.app"))
    assert tasks["prod.deploy"]["state"] == "success" and tasks["verify"]["state"] == "success"
    assert "dry-run-1" in registry(layout, "prod-private").tags(APP)


def test_the_trigger_form_shows_the_parameters_with_descriptions(airflow: AirflowStack):
    details = airflow.api("GET", f"/dags/{PROJECT}/details")
    params = details["params"]
    assert set(params) == {"release", "part", "deploy", "dry_run"}
    for name, param in params.items():
        assert param["description"], name
    assert params["part"]["schema"]["enum"] == ["build and promote", "promote an existing release",
                                                "deploy an existing release"]
    assert details["max_active_runs"] == 1


def test_dag_file_shows_no_import_errors_in_the_running_airflow(airflow: AirflowStack):
    airflow.wait_for_dag(PROJECT)
    errors = airflow.api("GET", "/importErrors")["import_errors"]
    assert errors == [], json.dumps(errors, indent=2)
    assert Path(airflow.api("GET", f"/dags/{PROJECT}")["fileloc"]).name == "airlock_projects.py"
