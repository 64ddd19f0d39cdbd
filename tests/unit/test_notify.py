"""Failure notifications: off by default; a webhook gets one JSON message per failed hop."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from airflow.sdk import BaseHook

from airlock.config import load_defaults, load_project
from airlock.dag import build_dag
from airlock.notify import WebhookNotifier

from .projects import project, write_projects


def test_notifications_are_off_by_default(tmp_path: Path):
    projects_dir = write_projects(tmp_path)
    dag = build_dag(load_project(projects_dir / "shop.yaml", load_defaults(projects_dir)))
    assert not any(task.on_failure_callback for task in dag.tasks)


def test_a_project_can_ask_for_a_webhook(tmp_path: Path):
    projects_dir = write_projects(tmp_path, {"shop.yaml": project(notify={"on_failure": {"webhook_conn_id": "ops"}})})
    dag = build_dag(load_project(projects_dir / "shop.yaml", load_defaults(projects_dir)))
    callbacks = dag.task_dict["cleanroom.push_app_prod_private"].on_failure_callback
    assert [type(c).__name__ for c in callbacks] == ["WebhookNotifier"]


def test_the_webhook_gets_project_hop_run_and_cause():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = SimpleNamespace(extra_dejson={}, host=f"http://127.0.0.1:{server.server_address[1]}/hook", port=None,
                           schema=None)
    context = {"ti": SimpleNamespace(dag_id="shop", task_id="cleanroom.push_app_prod_private", run_id="r1"),
               "dag_run": SimpleNamespace(dag_id="shop", run_id="manual__1"),
               "exception": "cannot reach the registry at prod-private"}
    try:
        with mock.patch.object(BaseHook, "get_connection", return_value=conn):
            WebhookNotifier(webhook_conn_id="ops").notify(context)
    finally:
        server.shutdown()
    assert received == [{"project": "shop", "task": "cleanroom.push_app_prod_private", "run": "manual__1",
                         "text": "Airlock shop: cleanroom.push_app_prod_private failed: cannot reach the registry "
                                 "at prod-private"}]
