"""docker-compose.yaml: valid, one Celery worker per zone on its zone's queue, and the DAG's tasks
use exactly those queues (so the same DAG runs on LocalExecutor and on workers spread over networks)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag

CHECKOUT = Path(__file__).resolve().parents[2]
ZONES = ("dev", "cleanroom", "prod")


@pytest.fixture(scope="module")
def compose() -> dict:
    assert shutil.which("docker-compose"), "docker-compose is missing: `make deps` installs Debian's"
    result = subprocess.run(["docker-compose", "-f", str(CHECKOUT / "docker-compose.yaml"), "--profile", "sandbox",
                             "config"], capture_output=True, text=True, cwd=CHECKOUT, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_official_airflow_services_are_there(compose: dict):
    services = compose["services"]
    for name in ("postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer", "airflow-init"):
        assert name in services, name
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_each_zone_has_a_worker_on_its_queue_with_its_daemon(compose: dict):
    services = compose["services"]
    def command(service: dict) -> list[str]:
        value = service.get("command") or []
        return value.split() if isinstance(value, str) else list(value)

    workers = {name: s for name, s in services.items() if "celery worker" in " ".join(command(s))}
    assert set(workers) == {f"airflow-worker-{zone}" for zone in ZONES}
    for zone in ZONES:
        worker = workers[f"airflow-worker-{zone}"]
        argv = command(worker)
        assert argv[argv.index("--queues") + 1] == zone
        assert f"AIRFLOW_CONN_AIRLOCK_ZONE_{zone.upper()}" in worker["environment"]
        others = [z for z in ZONES if z != zone]
        assert not any(f"AIRFLOW_CONN_AIRLOCK_ZONE_{o.upper()}" in worker["environment"] for o in others)


def test_the_sandbox_profile_adds_registries_and_the_link(compose: dict):
    for name in ("registry-dev-private", "registry-public", "registry-prod-private", "cleanroom-link"):
        assert name in compose["services"]


def test_dag_tasks_use_exactly_the_workers_queues(compose: dict):
    dag = DagBag(dag_folder=str(CHECKOUT / "dags")).dags["hello"]
    queues = {task.queue for task in dag.tasks}
    assert queues == set(ZONES)
    for task in dag.tasks:
        group = task.task_id.split(".")[0]
        if group in ZONES:
            assert task.queue == group, task.task_id
