"""The demo: the hello project's DAG, triggered in a real Airflow, on the three-zone sandbox.

Run by `make demo` after `python -m sandbox up`. It leaves everything running so that you can
open the Airflow UI; `make sandbox-down` stops it all.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from datetime import datetime

from sandbox.layout import CHECKOUT

sys.path.insert(0, str(CHECKOUT / "plugins"))  # the airlock package, as Airflow sees it

from sandbox.__main__ import link_request  # noqa: E402
from sandbox.airflow_stack import USER, AirflowError, AirflowStack  # noqa: E402
from sandbox.layout import Layout  # noqa: E402

PROJECT = "hello"
TRANSFER_TASKS = ("dev.push_app_dev_private", "dev.push_third_party_public", "prod.pull_third_party_public",
                  "prod.push_third_party_prod_private", "cleanroom.pull_app_dev_private",
                  "cleanroom.push_app_prod_private")


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> int:
    layout = Layout.from_environment()
    stack = AirflowStack(layout)
    print(f"airflow: {stack.start()} at {stack.url}")
    link_request(layout, "/reset", {})
    started = time.monotonic()
    run_id = stack.trigger(PROJECT)
    print(f"triggered {PROJECT}: run {run_id}; waiting for it to finish ...")
    run = stack.wait_for_run(PROJECT, run_id)
    elapsed = time.monotonic() - started
    tasks = stack.task_instances(PROJECT, run_id)
    link = link_request(layout, "/stats")

    print(f"\nrun {run_id}: {run['state'].upper()} in {_seconds(run['start_date'], run['end_date']):.1f} s "
          f"({elapsed:.1f} s from trigger)\n")
    print(f"{'task':<38} {'state':<9} {'seconds':>7}  moved")
    for task_id, ti in sorted(tasks.items(), key=lambda kv: kv[1].get("start_date") or ""):
        moved = ""
        if task_id == "cleanroom.push_app_prod_private" and ti["state"] == "success":
            try:
                link_report = stack.xcom(PROJECT, run_id, task_id, "link")
                moved = (f"{link_report['blobs_sent']} blob(s) sent, {link_report['blobs_mounted']} mounted, "
                         f"{link_report['blobs_skipped']} already there; {link_report['bytes_total']:,} bytes")
            except AirflowError:  # the docker transport records 'transfer' instead
                pass
        if not moved and task_id in TRANSFER_TASKS and ti["state"] == "success":
            try:
                transfer = stack.xcom(PROJECT, run_id, task_id, "transfer")
                if transfer.get("already_done"):
                    moved = "nothing: already there"
                else:
                    moved = (f"{transfer['layers_sent']} layer(s) moved, {transfer['layers_present']} already "
                             f"there, {transfer['layers_mounted']} mounted")
            except AirflowError:
                moved = ""
        print(f"{task_id:<38} {ti['state']:<9} {ti.get('duration') or 0:>7.1f}  {moved}")
    print(f"\ncleanroom link into prod (the proxy's counters): {link['bytes_up']:,} bytes sent, "
          f"{link['bytes_down']:,} received, {link['connections']} connection(s)")
    try:
        from airlock.operators.summary import to_markdown

        print("\n" + to_markdown(stack.xcom(PROJECT, run_id, "summary")))
    except (AirflowError, ImportError):
        pass

    if run["state"] != "success":
        print(f"\nThe run failed: open {stack.url} (user {USER}, password {stack.password}) and read the "
              f"failed task's log.", file=sys.stderr)
        return 1
    digest = stack.xcom(PROJECT, run_id, "dev.push_app_dev_private")
    port = os.environ.get("AIRLOCK_HELLO_PORT", "18080")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        health = response.read().decode().strip()
    print(f"\nhello runs in the prod zone from prod-private as {digest}")
    print(f"  curl http://127.0.0.1:{port}/health  ->  {health}")
    print(f"\nAirflow UI: {stack.url}   user: {USER}   password: {stack.password}")
    print(f"  the run: {stack.url}/dags/{PROJECT}/runs/{run_id}")
    print("Everything keeps running; `make sandbox-down` stops it all.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
