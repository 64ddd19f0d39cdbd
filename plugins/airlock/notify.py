"""Failure notifications through Airflow's notifier interface (off unless the project file asks).

    notify:
      on_failure:
        webhook_conn_id: ops_webhook      # POSTs JSON to the connection's URL (Slack/Teams/Mattermost style)
        smtp_conn_id: smtp_default        # and/or an e-mail through Airflow's SMTP provider
        email_to: [ops@example.com]

Each hop that fails for good (after its retries) sends one message naming the project, the hop,
the run and the cause — the same one line its log ends with.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseHook, BaseNotifier


def failure_message(context: Any) -> dict[str, str]:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    task_id = getattr(ti, "task_id", "?")
    return {
        "project": getattr(ti, "dag_id", "") or getattr(dag_run, "dag_id", ""),
        "task": task_id,
        "run": getattr(dag_run, "run_id", "") or getattr(ti, "run_id", ""),
        "text": f"Airlock {getattr(ti, 'dag_id', '')}: {task_id} failed: {exception or 'see the task log'}",
    }


class WebhookNotifier(BaseNotifier):
    """POST {"text": ..., "project", "task", "run"} to the URL of an Airflow connection."""

    template_fields: Sequence[str] = ()

    def __init__(self, *, webhook_conn_id: str, timeout: float = 10.0):
        super().__init__()
        self.webhook_conn_id = webhook_conn_id
        self.timeout = timeout

    def _url(self) -> str:
        conn = BaseHook.get_connection(self.webhook_conn_id)
        url = conn.extra_dejson.get("url") or conn.host or ""
        if url and not url.startswith(("http://", "https://")):
            port = f":{conn.port}" if conn.port else ""
            url = f"{conn.schema or 'https'}://{url}{port}"
        return url

    def notify(self, context: Any) -> None:
        body = json.dumps(failure_message(context)).encode()
        request = urllib.request.Request(self._url(), data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                pass
        except OSError as exc:  # a notification must never hide the failure it reports
            self.log.warning("Could not send the failure notification to connection %s: %s",
                             self.webhook_conn_id, exc)


def failure_notifiers(on_failure: dict[str, Any] | None) -> list:
    """The notifiers a project's `notify.on_failure` asks for; none by default."""
    if not on_failure:
        return []
    notifiers: list = []
    if on_failure.get("webhook_conn_id"):
        notifiers.append(WebhookNotifier(webhook_conn_id=on_failure["webhook_conn_id"]))
    if on_failure.get("smtp_conn_id"):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        notifiers.append(SmtpNotifier(
            smtp_conn_id=on_failure["smtp_conn_id"], to=on_failure.get("email_to") or [],
            subject="Airlock {{ ti.dag_id }}: {{ ti.task_id }} failed",
            html_content="{{ ti.dag_id }} run {{ run_id }}: {{ ti.task_id }} failed: {{ exception }}"))
    return notifiers
