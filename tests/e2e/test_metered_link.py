"""The metered link, on the sandbox: only what prod lacks crosses it, and a drop costs only the
bytes in flight. Bytes are read from the link proxy's counters, never from logs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from sandbox.__main__ import link_request
from sandbox.layout import CHECKOUT, Layout
from sandbox.promotion import FakeTI, Project, run_task, use_sandbox_connections

MB = 1024


@pytest.fixture
def project(layout: Layout, zones):
    use_sandbox_connections(layout)
    link_request(layout, "/settings", {"rate_bytes_per_s": None, "latency_s": 0, "drop_every_bytes": None,
                                       "drop_conn_after_bytes": None, "refuse_for_s": 0})
    yield Project(layout, zones)
    link_request(layout, "/settings", {"rate_bytes_per_s": None, "drop_every_bytes": None,
                                       "drop_conn_after_bytes": None})


@pytest.mark.parametrize("transport", ["relay", "docker"])
def test_only_the_own_code_layer_crosses_first_promotion_and_third_party_update(project: Project, transport):
    # First promotion: the runtime and dependency layers reached prod-private through public.
    app, _ = project.release("r1", dependency_kb=512, own_kb=1 * MB, seed="a")
    link, _ = project.promote(transport, app, "r1")
    budget = project.own_layer_size(app)
    assert project.prod_manifest("r1").digest == app
    assert link["bytes_up"] < 1.05 * budget, (link, budget)

    # Third-party update: a new dependency layer (and new own code) on top; same repositories.
    app2, _ = project.release("r2", dependency_kb=2 * MB, own_kb=1 * MB, seed="b")
    link, _ = project.promote(transport, app2, "r2")
    budget = project.own_layer_size(app2)
    assert project.prod_manifest("r2").digest == app2
    assert link["bytes_up"] < 1.05 * budget, (link, budget)

    # Nothing new: nothing but a few registry questions crosses.
    link, ti = project.promote(transport, app2, "r2")
    assert link["bytes_up"] < 10_000, link


def test_relay_delivers_through_a_link_that_cuts_every_2mb(project: Project, layout: Layout):
    app, _ = project.release("r1", dependency_kb=256, own_kb=10 * MB, seed="c")
    minimum = project.minimum(app)
    link_request(layout, "/settings", {"drop_every_bytes": 2_000_000})
    link, ti = project.promote("relay", app, "r1")
    assert link["drops"] >= 4  # the fault really happened
    assert project.prod_manifest("r1").digest == app
    assert link["bytes_up"] < 1.3 * minimum, (link, minimum)
    # No staging chunk is left behind.
    staged = ti.xcom_pull("cleanroom.push_app_prod_private", "staged")
    prod = project.registry("prod-private")
    chunks = [c for cs in staged["blobs"].values() for c in cs]
    assert chunks and not any(prod.has_blob(staged["staging_repository"], c) for c in chunks)
    # The image runs in prod, pulled from prod-private by digest.
    reference = f"{layout.registry_address('prod-private')}/{project.app}@{app}"
    project.zones["prod"].images.pull(reference, auth_config=project.auth)
    out = project.zones["prod"].containers.run(reference, ["cat", "/usr/lib/runtime/VERSION"], remove=True,
                                               network_mode="none")
    assert out.startswith(b"sandbox runtime")


RUN_PUSH = """
import json, sys
from sandbox.promotion import FakeTI, Project, run_task, use_sandbox_connections
from sandbox.layout import Layout
layout = Layout.from_environment()
use_sandbox_connections(layout)
spec = json.loads(sys.argv[1])
project = Project(layout, {}, name=spec["name"])
ti = FakeTI()
for task in project.relay_tasks(spec["digest"], spec["release"])[:2]:
    run_task(task, ti)
print(json.dumps(ti.store[("cleanroom.push_app_prod_private", "link")]))
"""


def test_a_killed_cleanroom_task_resumes_without_resending_what_arrived(project: Project, layout: Layout):
    app, _ = project.release("r1", dependency_kb=256, own_kb=8 * MB, seed="d")
    minimum = project.minimum(app)
    spec = json.dumps({"name": project.name, "digest": app, "release": "r1"})
    command = [sys.executable, "-c", RUN_PUSH, spec]
    env = {"PYTHONPATH": f"{CHECKOUT}:{CHECKOUT / 'plugins'}", "PATH": "/usr/bin:/bin",
           "AIRFLOW_HOME": str(layout.state_dir / "airflow-tests")}
    link_request(layout, "/reset", {})
    link_request(layout, "/settings", {"rate_bytes_per_s": 2_000_000})  # slow enough to kill it mid-upload
    first = subprocess.Popen(command, cwd=CHECKOUT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while link_request(layout, "/stats")["bytes_up"] < 4_000_000:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.kill()  # what a worker crash or a killed task does: no clean-up
    first.wait()
    sent_before = link_request(layout, "/stats")["bytes_up"]
    assert sent_before < minimum  # it really was cut mid-upload

    link_request(layout, "/settings", {"rate_bytes_per_s": None})
    second = subprocess.run(command, cwd=CHECKOUT, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    report = json.loads(second.stdout.strip().splitlines()[-1])
    total = link_request(layout, "/stats")["bytes_up"]
    assert report["chunks_skipped"] >= 6  # chunks that had arrived were not sent again
    # Both tries together: the blobs once, plus at most the chunk in flight and request overhead.
    assert total < minimum + 512 * 1024 + 0.05 * minimum, (total, minimum)

    # Prod assembles what was staged (the push's XCom lists it; a third try sends no chunk).
    _, push, assemble = project.relay_tasks(app, "r1")
    ti = FakeTI()
    run_task(push, ti)
    assert ti.xcom_pull("cleanroom.push_app_prod_private", "link")["chunks_sent"] == 0
    run_task(assemble, ti)
    assert project.prod_manifest("r1").digest == app


def test_a_dry_run_plans_the_cleanroom_hop_and_sends_nothing(project: Project, layout: Layout):
    app, _ = project.release("r1", dependency_kb=256, own_kb=1 * MB, seed="e")
    minimum = project.minimum(app)
    fetch, push, _ = project.relay_tasks(app, "r1")
    ti = FakeTI()
    run_task(fetch, ti, {"dry_run": True})
    link_request(layout, "/reset", {})
    run_task(push, ti, {"dry_run": True})
    plan = ti.xcom_pull("cleanroom.push_app_prod_private", "plan")
    assert plan["bytes_to_send"] == minimum  # the own-code layer, the config and the manifest
    assert plan["blobs_to_send"] == 2 and plan["blobs_to_mount"] >= 3
    assert link_request(layout, "/stats")["bytes_up"] < 10_000  # questions only
    assert project.prod_manifest("r1") is None
