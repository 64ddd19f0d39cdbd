"""The one place Airlock's errors live.

Every error says what happened, where (hop, zone, registry or daemon, reference), the cause,
and whether retrying can help — because the person reading it is an ops engineer looking at
a failed task's last log lines.
"""

from __future__ import annotations


class AirlockError(Exception):
    """Base class. `retryable` tells Airflow-facing code whether another try can help."""

    retryable = False

    def __init__(self, what: str, *, hop: str = "", where: str = "", reference: str = "", cause: str = "",
                 advice: str = "", retryable: bool | None = None):
        self.what = what
        self.hop = hop
        self.where = where
        self.reference = reference
        self.cause = cause
        self.advice = advice
        if retryable is not None:
            self.retryable = retryable
        super().__init__(self.message())

    def message(self) -> str:
        parts = [f"[{self.hop}] " if self.hop else "", self.what]
        if self.where:
            parts.append(f" at {self.where}")
        if self.reference:
            parts.append(f" for {self.reference}")
        if self.cause:
            parts.append(f": {self.cause}")
        parts.append(". ")
        parts.append(self.advice or ("A retry may help (the cause looks transient)." if self.retryable
                                     else "Retrying will not help until this is fixed."))
        return "".join(parts)


class ConfigError(AirlockError):
    """A project file (or trigger parameter) is wrong. Names the file and the field."""

    def __init__(self, file: str, field: str, problem: str, advice: str = ""):
        self.file = file
        self.field = field
        self.problem = problem
        location = f"{file}: {field}" if field else file
        super().__init__(f"{location}: {problem}", advice=advice or "Fix the project file; it is read again "
                         "at the next DAG parse.", retryable=False)

    def message(self) -> str:
        return f"{self.what}. {self.advice}"


class ImageReferenceError(AirlockError):
    """An image reference that cannot be parsed."""


class DockerDaemonError(AirlockError):
    """The zone's Docker daemon refused or could not be reached."""


class DockerStreamError(AirlockError):
    """A build, push or pull stream reported an error chunk."""


class RegistryError(AirlockError):
    """A registry answered with an error, or could not be reached."""

    status = 0  # the HTTP status, when the registry answered


def refused_upload_method(exc: RegistryError) -> bool:
    """The registry does not support this way of uploading (chunked or monolithic)."""
    return exc.status in (405, 415, 501) or "UNSUPPORTED" in exc.cause


class RegistryAuthError(RegistryError):
    """The registry refused the login. Never retried."""

    retryable = False


class DeployError(AirlockError):
    """The new release did not become healthy in prod; the previous one is kept."""


class VerifyError(AirlockError):
    """What runs in prod is not what was built in dev."""
