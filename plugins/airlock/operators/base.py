"""What every Airlock operator shares: its zone, its hop name, and how failures reach Airflow."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

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

    def __init__(self, *, zone: str, zone_conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.zone = zone
        self.zone_conn_id = zone_conn_id

    def zone_hook(self) -> ZoneDockerHook:
        return ZoneDockerHook(zone=self.zone, zone_conn_id=self.zone_conn_id)

    @property
    def hop(self) -> str:
        return self.task_id

    def where(self, hook: ZoneDockerHook) -> str:
        return f"{self.zone} zone daemon {hook.base_url}"

    def execute(self, context: Any) -> Any:
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


def registry_hook(registry: str, address: str, conn_id: str | None, scheme: str) -> RegistryHook:
    return RegistryHook(registry=registry, address=address, registry_conn_id=conn_id, scheme=scheme)
