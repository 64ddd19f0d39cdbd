"""The DAG a project file turns into: tasks, groups, dependencies, retries and queues per zone."""

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from airlock.config import load_defaults, load_project
from airlock.dag import build_dag

from .projects import project, write_projects

CHECKOUT = Path(__file__).resolve().parents[2]

EXPECTED_UPSTREAM = {
    "build.artifacts": set(),
    "build.third_party": {"build.artifacts"},
    "build.app": {"build.third_party"},
    "build.remove_artifacts": {"build.app"},
    "dev.push_app_dev_private": {"build.app"},
    "dev.push_third_party_public": {"build.third_party"},
    "prod.pull_third_party_public": {"dev.push_third_party_public"},
    "prod.push_third_party_prod_private": {"prod.pull_third_party_public"},
    "cleanroom.pull_app_dev_private": {"dev.push_app_dev_private"},
    "cleanroom.push_app_prod_private": {"cleanroom.pull_app_dev_private", "prod.push_third_party_prod_private"},
    "prod.assemble_app_prod_private": {"cleanroom.push_app_prod_private"},
    "prod.deploy": {"prod.assemble_app_prod_private"},
    "verify": {"prod.deploy"},
    "summary": {"verify", "build.remove_artifacts"},
}


def make_dag(tmp_path: Path, **changes):
    data = project(retries={"default": {"retries": 1}, "prod.deploy": {"retries": 0}}, **changes)
    projects_dir = write_projects(tmp_path, {"shop.yaml": data})
    return build_dag(load_project(projects_dir / "shop.yaml", load_defaults(projects_dir)))


@pytest.fixture(params=["relay", "docker"])
def dag(tmp_path: Path, request):
    return make_dag(tmp_path, **{"promotion.transport": request.param})


def test_tasks_and_dependencies(dag):
    assert dag.dag_id == "shop"
    assert {t: dag.task_dict[t].upstream_task_ids for t in dag.task_dict} == EXPECTED_UPSTREAM


def test_each_task_runs_on_its_zones_queue_and_connection(dag):
    for task_id, task in dag.task_dict.items():
        if task_id == "summary":  # needs no daemon: runs on the dev queue
            assert task.queue == "dev"
            continue
        zone = {"build": "dev", "dev": "dev", "cleanroom": "cleanroom", "prod": "prod", "verify": "prod"}[
            task_id.split(".")[0]]
        assert task.queue == zone, task_id
        assert task.zone_conn_id == f"airlock_zone_{zone}", task_id


def test_the_cleanroom_sees_prod_private_through_the_link(tmp_path: Path):
    docker_dag = make_dag(tmp_path, **{"promotion.transport": "docker"})
    assert docker_dag.task_dict["cleanroom.push_app_prod_private"].registry_address == "link.example:6003"
    assert docker_dag.task_dict["prod.push_third_party_prod_private"].registry_address == "prod.example:5000"
    assert docker_dag.task_dict["cleanroom.pull_app_dev_private"].registry_address == "dev.example:5000"
    relay_dag = make_dag(tmp_path / "relay")
    push = relay_dag.task_dict["cleanroom.push_app_prod_private"]
    assert push.target["registry_address"] == "link.example:6003"
    assert push.source["registry_address"] == "dev.example:5000"
    assert relay_dag.task_dict["prod.assemble_app_prod_private"].registry["registry_address"] == "prod.example:5000"


def test_relay_is_the_default_and_mounts_from_third_party(tmp_path: Path):
    push = make_dag(tmp_path).task_dict["cleanroom.push_app_prod_private"]
    assert type(push).__name__ == "RelayPushOperator"
    assert push.mount_from == ["shop/third-party"]
    assert push.resume == "staged" and push.chunk_size == 256 * 1024
    docker_push = make_dag(tmp_path / "d", **{"promotion.transport": "docker"}).task_dict[
        "cleanroom.push_app_prod_private"]
    assert docker_push.mount_from == ["shop/third-party"]


def test_retries_with_exponential_backoff_per_hop(dag):
    cleanroom = dag.task_dict["cleanroom.push_app_prod_private"]
    assert cleanroom.retries >= 5
    assert cleanroom.retry_exponential_backoff == 2.0
    assert cleanroom.retry_delay == timedelta(seconds=15)
    assert dag.task_dict["dev.push_app_dev_private"].retries == 1
    assert dag.task_dict["prod.deploy"].retries == 0


def test_artifacts_are_removed_whatever_happened_and_never_pushed(dag):
    remove = dag.task_dict["build.remove_artifacts"]
    assert remove.trigger_rule == "all_done"
    for task_id in ("dev.push_app_dev_private", "dev.push_third_party_public"):
        assert dag.task_dict[task_id].refuse == [remove.image]


def test_later_hops_move_images_by_digest(dag):
    push = dag.task_dict["cleanroom.push_app_prod_private"]
    from_dev = "{{ ti.xcom_pull(task_ids='dev.push_app_dev_private', key='return_value') }}"
    if hasattr(push, "image"):  # docker transport
        assert push.image.endswith("@" + from_dev)
        assert push.expect_digest == from_dev
    else:
        assert push.digest == from_dev
    assert dag.task_dict["prod.deploy"].digest == from_dev


def test_runs_never_race_and_do_not_catch_up(dag):
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert "release" in dag.params


def test_every_dag_file_imports_without_errors():
    bag = DagBag(dag_folder=str(CHECKOUT / "dags"))
    assert bag.import_errors == {}
    assert "hello" in bag.dags
    assert len(bag.dags["hello"].tasks) == 14


def test_a_broken_project_file_is_an_import_error_and_hides_no_other_dag(tmp_path: Path):
    import shutil

    from .projects import PROJECT

    dags = tmp_path / "dags"
    dags.mkdir()
    for name in ("airlock_projects.py", "airlock_project_errors.py"):
        shutil.copy(CHECKOUT / "dags" / name, dags / name)
    write_projects(dags, {"shop.yaml": PROJECT, "broken.yaml": project(project="broken", colour="red"),
                          "bad_cron.yaml": project(project="cron", schedule="at night")})
    bag = DagBag(dag_folder=str(dags))
    assert set(bag.dags) == {"shop"}
    assert list(bag.import_errors) == [str(dags / "airlock_project_errors.py")]
    message = bag.import_errors[str(dags / "airlock_project_errors.py")]
    assert "broken.yaml: colour: unknown key" in message
    assert "bad_cron.yaml: schedule: 'at night' is not a valid cron expression" in message


def test_trigger_parameters_are_validated(dag):
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict({key: dag.params.get_param(key) for key in dag.params})
    params["release"] = "1.2.3"
    params.validate()
    with pytest.raises(Exception, match="Invalid input for param release"):
        params["release"] = "release one"


@pytest.mark.parametrize("params, task_id, skipped", [
    ({}, "build.app", False),
    ({"part": "promote an existing release"}, "build.app", True),
    ({"part": "promote an existing release"}, "cleanroom.push_app_prod_private", False),
    ({"part": "deploy an existing release"}, "cleanroom.push_app_prod_private", True),
    ({"part": "deploy an existing release"}, "prod.deploy", False),
    ({"dry_run": True}, "cleanroom.push_app_prod_private", False),
    ({"dry_run": True}, "prod.push_third_party_prod_private", True),
    ({"dry_run": True}, "prod.deploy", True),
    ({"deploy": False}, "prod.deploy", True),
    ({"deploy": False}, "verify", True),
    ({"deploy": False}, "prod.assemble_app_prod_private", False),
    ({"part": "promote an existing release"}, "dev.push_app_dev_private", False),
    ({"part": "promote an existing release"}, "dev.push_third_party_public", False),
])
def test_trigger_parameters_choose_what_runs(dag, params, task_id, skipped):
    from airlock.operators.base import skip_reason

    assert bool(skip_reason(params, dag.task_dict[task_id].skip_when)) is skipped
    if task_id.startswith("dev.push"):  # runs after skipped builds, and finds the release instead of pushing
        assert dag.task_dict[task_id].trigger_rule == "none_failed"
        assert dag.task_dict[task_id].resolve_when_not_building is True
