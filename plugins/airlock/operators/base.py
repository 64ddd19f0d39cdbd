"""What every Airlock operator shares: its zone, its hop name, and how failures reach Airflow."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from airlock.exceptions import AirlockError
from airlock.hooks import RegistryHook, ZoneDockerHook

log = logging.getLogger(__name__)


class ZoneOperator(BaseOperator):
    """An operator that runs in one zone, against that zone's Docker daemon.

    Subclasses implement `run(context)`. An AirlockError becomes one clear last log line and:
    a retryable one → AirflowException (Airflow retries with backoff);
    a final one (refused login, bad input, refused image) → AirflowFailException (no retry).
    """

    template_fields: Sequence[str] = ()
    ui_color = "#e8f0fe"

    def __init__(self, *, zone: str, zone_conn_id: str, skip_when: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.zone = zone
        self.zone_conn_id = zone_conn_id
        # Trigger parameters under which this task has nothing to do: "not_building" (part is not
        # "build and promote"), "deploy_existing", "dry_run", "no_deploy".
        self.skip_when = list(skip_when)

    def zone_hook(self) -> ZoneDockerHook:
        return ZoneDockerHook(zone=self.zone, zone_conn_id=self.zone_conn_id)

    @property
    def hop(self) -> str:
        return self.task_id

    def where(self, hook: ZoneDockerHook) -> str:
        return f"{self.zone} zone daemon {hook.base_url}"

    def execute(self, context: Any) -> Any:
        reason = skip_reason(context.get("params") or {}, self.skip_when)
        if reason:
            self.log.info("Skipped: %s", reason)
            raise AirflowSkipException(reason)
        started = time.monotonic()
        outcome = "failed"
        try:
            result = self.run(context)
            outcome = "success"
            return result
        except AirlockError as exc:
            if not exc.hop:
                exc.hop = self.hop
            message = exc.message()
            self.log.error("%s", message)
            if exc.retryable:
                raise AirflowException(message) from None
            raise AirflowFailException(message) from None
        finally:  # for the run summary
            context["ti"].xcom_push(key="timing", value={"seconds": round(time.monotonic() - started, 2),
                                                         "outcome": outcome})

    def run(self, context: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


BUILD = "build and promote"
PROMOTE_EXISTING = "promote an existing release"
DEPLOY_EXISTING = "deploy an existing release"
PARTS = (BUILD, PROMOTE_EXISTING, DEPLOY_EXISTING)


def skip_reason(params: Any, skip_when: Sequence[str]) -> str:
    """Why a task with these `skip_when` conditions has nothing to do in a run with these params."""
    part = params.get("part") or BUILD
    if "not_building" in skip_when and part != BUILD:
        return f"this run does not build (part: {part})"
    if "deploy_existing" in skip_when and part == DEPLOY_EXISTING:
        return "this run deploys a release already in prod-private (part: deploy an existing release)"
    if "dry_run" in skip_when and params.get("dry_run"):
        return "dry run: nothing is sent to prod"
    if "no_deploy" in skip_when and params.get("deploy") is False:
        return "deploy is off for this run"
    return ""


def registry_hook(registry: str, address: str, conn_id: str | None, scheme: str) -> RegistryHook:
    return RegistryHook(registry=registry, address=address, registry_conn_id=conn_id, scheme=scheme)
