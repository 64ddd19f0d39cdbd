"""summary — the run's report, for the ops user reading the Airflow UI.

Runs at the end of every run, whatever happened (trigger rule all_done). Collects the XComs the
hops left (digests, what each transfer moved, what crossed the metered link, seconds per hop)
and writes a markdown report to its log and a JSON one as its XCom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airlock.config import HOPS

DIGEST_TASKS = {
    "dev.push_app_dev_private": "app in dev-private",
    "dev.push_third_party_public": "third-party in public",
    "prod.push_third_party_prod_private": "third-party in prod-private",
    "cleanroom.push_app_prod_private": "app in prod-private",
    "prod.deploy": "app running in prod",
}


def build_report(project: str, release: str, xcoms: dict[tuple[str, str], Any]) -> dict:
    """The report from the hops' XComs: {(task_id, key): value}. Plain data in, plain data out."""
    hops = []
    for task_id in HOPS:
        timing = xcoms.get((task_id, "timing"))
        if timing is None and (task_id, "return_value") not in xcoms:
            continue
        hops.append({"task": task_id, "seconds": (timing or {}).get("seconds"),
                     "outcome": (timing or {}).get("outcome", "success"),
                     "transfer": xcoms.get((task_id, "transfer")), "link": xcoms.get((task_id, "link"))})
    failed = [h["task"] for h in hops if h["outcome"] != "success"]
    link = xcoms.get(("cleanroom.push_app_prod_private", "link")) or {}
    moved = any((h["transfer"] or {}).get("layers_sent") for h in hops) or bool(link.get("blobs_sent"))
    return {
        "project": project,
        "release": release,
        "nothing_new": not failed and not moved and bool(hops),
        "outcome": "failed" if failed else ("success" if ("verify", "return_value") in xcoms else "incomplete"),
        "failed": failed,
        "digests": {label: xcoms.get((task, "return_value")) for task, label in DIGEST_TASKS.items()},
        "metered_link": link,
        "hops": hops,
    }


def to_markdown(report: dict) -> str:
    lines = [f"# {report['project']} release {report['release']}: {report['outcome'].upper()}", ""]
    if report.get("nothing_new"):
        lines += ["Nothing new: every image was already where it belongs; no layer was moved and nothing "
                  "crossed the metered link.", ""]
    if report["failed"]:
        lines += [f"Failed: {', '.join(report['failed'])} (read that task's last log lines).", ""]
    lines += ["| where | digest |", "|---|---|"]
    lines += [f"| {label} | {digest or '-'} |" for label, digest in report["digests"].items()]
    link = report["metered_link"]
    if link:
        lines += ["", "Metered link (cleanroom to prod-private): "
                  f"{link.get('blobs_sent', 0)} blob(s) sent, {link.get('blobs_mounted', 0)} mounted, "
                  f"{link.get('blobs_skipped', 0)} already there; {link.get('blob_bytes', 0):,} bytes of blob data, "
                  f"{link.get('bytes_total', 0):,} bytes in all; {link.get('retries', 0)} retr(y/ies), "
                  f"{link.get('resumes', 0)} resume(s)."]
    lines += ["", "| hop | outcome | seconds | moved |", "|---|---|---:|---|"]
    for hop in report["hops"]:
        transfer = hop["transfer"] or {}
        moved = ""
        if transfer.get("already_done"):
            moved = "nothing: already there"
        elif transfer:
            moved = (f"{transfer.get('layers_sent', 0)} layer(s) moved, {transfer.get('layers_present', 0)} "
                     f"already there, {transfer.get('layers_mounted', 0) + transfer.get('blobs_mounted', 0)} mounted")
        seconds = f"{hop['seconds']:.1f}" if hop["seconds"] is not None else "-"
        lines.append(f"| {hop['task']} | {hop['outcome']} | {seconds} | {moved} |")
    return "\n".join(lines)


class SummaryOperator(BaseOperator):
    template_fields: Sequence[str] = ("release",)
    ui_color = "#f3f3f3"

    def __init__(self, *, project: str, release: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.release = release

    def execute(self, context: Any) -> dict:
        ti = context["ti"]
        xcoms: dict[tuple[str, str], Any] = {}
        for task_id in HOPS:
            for key in ("return_value", "timing", "transfer", "link"):
                value = ti.xcom_pull(task_ids=task_id, key=key)
                if value is not None:
                    xcoms[(task_id, key)] = value
        report = build_report(self.project, self.release, xcoms)
        self.log.info("Run summary\n%s", to_markdown(report))
        return report
