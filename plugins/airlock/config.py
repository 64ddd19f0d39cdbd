"""The project file's schema. Every error names the file, the field and the problem.

A project file is `dags/projects/<name>.yaml`. Zones and registries that many projects share
live in `dags/projects/_defaults.yaml` (files starting with `_` are not projects); a project's
own keys override the defaults, key by key. String values may use `${VARIABLE}` or
`${VARIABLE:-fallback}` to read the environment (no network, no database at parse time).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from airlock import refs
from airlock.exceptions import ConfigError
from airlock.guardrails import DEFAULT_SOURCE_PATTERNS

ZONES = ("dev", "cleanroom", "prod")
REGISTRIES = ("dev-private", "public", "prod-private")
STAGES = ("artifacts", "third_party", "app")
HOPS = (
    "build.artifacts", "build.third_party", "build.app", "build.remove_artifacts",
    "dev.push_app_dev_private", "dev.push_third_party_public",
    "prod.pull_third_party_public", "prod.push_third_party_prod_private",
    "cleanroom.pull_app_dev_private", "cleanroom.push_app_prod_private", "prod.assemble_app_prod_private",
    "prod.deploy", "verify",
)
NETWORK_HOPS = tuple(h for h in HOPS if not h.startswith("build.") and h != "verify")
DEFAULTS_FILE = "_defaults.yaml"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageConfig(_Strict):
    dockerfile: str = Field(description="Dockerfile path, relative to the build context")
    target: str | None = Field(None, description="build target, for one multi-stage Dockerfile")


class BuildConfig(_Strict):
    context: str = Field(description="build context folder, relative to the project file")
    stages: dict[Literal["artifacts", "third_party", "app"], StageConfig]
    args: dict[str, str] = Field(default_factory=dict, description="build args for every stage")
    own_files: list[str] = Field(description="name patterns of the company's own compiled files, e.g. MyProject*")
    source_files: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SOURCE_PATTERNS),
        description="patterns of source files that no pushed layer may hold (a trailing / names a folder); "
                    "add '*.py' or '*.pdb' when your project says so")
    timeout_s: int = Field(1800, gt=0)

    @field_validator("stages")
    @classmethod
    def _all_three_stages(cls, stages: dict) -> dict:
        missing = [s for s in STAGES if s not in stages]
        if missing:
            raise ValueError(f"missing stage(s) {', '.join(missing)}: artifacts, third_party and app are all "
                             "required")
        return stages

    @field_validator("own_files")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        if not patterns or any(not p.strip() for p in patterns):
            raise ValueError("give at least one non-empty name pattern (e.g. 'MyProject*'); without them "
                             "Airlock cannot tell your code from third-party files")
        if any(p.strip() in ("*", "**", "*.*") for p in patterns):
            raise ValueError("a pattern that matches every file would put third-party files in the app layer")
        return patterns


class ImagesConfig(_Strict):
    third_party: str = Field(description="repository of the third-party image (public, prod-private)")
    app: str = Field(description="repository of the app image (dev-private, prod-private)")

    @field_validator("third_party", "app")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not refs.is_repository(value):
            raise ValueError(f"{value!r} is not a repository name (lowercase, digits, . _ - and /)")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> ImagesConfig:
        if self.third_party == self.app:
            raise ValueError("third_party and app must be different repositories")
        if "artifacts" in (self.third_party + self.app).split("/")[-1]:
            raise ValueError("repository names must not say 'artifacts': that image is never pushed")
        return self


class ZoneConfig(_Strict):
    docker_conn_id: str = Field(description="Airflow connection with the zone's Docker daemon URL (extra base_url)")
    queue: str = Field(description="Celery queue of the zone's workers")


class RegistryConfig(_Strict):
    conn_id: str | None = Field(None, description="Airflow connection with the registry login; none = anonymous")
    address: str = Field(description="host[:port] of the registry")
    seen_from: dict[Literal["dev", "cleanroom", "prod"], str] = Field(
        default_factory=dict, description="address of the registry as seen from a zone, when it differs")
    scheme: Literal["http", "https"] = "https"
    resume: Literal["staged", "native"] = Field(
        "staged", description="how the relay resumes uploads into this registry: 'native' for registries that "
        "report an interrupted upload's offset (OCI upload status, distribution 3.x); 'staged' (works with "
        "all, needed for CNCF distribution 2.8) sends chunks as blobs of their own and assembles them in prod")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not refs.is_registry(value):
            raise ValueError(f"{value!r} is not host[:port]")
        return value

    @field_validator("seen_from")
    @classmethod
    def _addresses(cls, value: dict) -> dict:
        for zone, address in value.items():
            if not refs.is_registry(address):
                raise ValueError(f"{zone}: {address!r} is not host[:port]")
        return value

    def address_from(self, zone: str) -> str:
        return self.seen_from.get(zone, self.address)  # type: ignore[call-overload]


class RetryConfig(_Strict):
    retries: int = Field(2, ge=0, le=50)
    retry_delay_s: float = Field(10, gt=0)
    max_retry_delay_s: float = Field(600, gt=0)
    backoff: float = Field(2.0, ge=0, description="multiplier between retry delays; 0 = fixed delay")
    timeout_s: float | None = Field(None, gt=0, description="execution timeout of one try")


class HealthConfig(_Strict):
    command: list[str] | None = Field(None, description="run inside the container; exit 0 = healthy. "
                                      "Default: the image's own HEALTHCHECK")
    interval_s: float = Field(2, gt=0)
    timeout_s: float = Field(5, gt=0)
    retries: int = Field(3, ge=1)
    start_period_s: float = Field(0, ge=0)
    wait_s: float = Field(120, gt=0, description="how long the deploy waits for 'healthy'")


class DeployConfig(_Strict):
    container_name: str
    environment: dict[str, str] = Field(default_factory=dict)
    ports: dict[str, int] = Field(default_factory=dict, description="container port (8080/tcp) -> host port")
    network_mode: str | None = Field(None, description="e.g. host; default: the daemon's default network")
    command: list[str] | None = None
    health: HealthConfig = Field(default_factory=HealthConfig)

    @field_validator("container_name")
    @classmethod
    def _container_name(cls, value: str) -> str:
        if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$", value):
            raise ValueError(f"{value!r} is not a valid container name")
        return value


class PromotionConfig(_Strict):
    transport: Literal["relay", "docker"] = Field(
        "relay", description="relay: registry to registry, chunked and resumable, no Docker daemon in the "
        "cleanroom; docker: docker pull/tag/push on the cleanroom's daemon (after mounting what prod has)")
    chunk_size_kb: int = Field(256, ge=16, le=65536, description="chunk size on the metered link")
    cache_dir: str = Field("/var/cache/airlock", description="the cleanroom worker's blob cache")


class FailureNotifyConfig(_Strict):
    webhook_conn_id: str | None = Field(None, description="connection whose URL gets a JSON POST per failure")
    smtp_conn_id: str | None = Field(None, description="SMTP connection for an e-mail per failure")
    email_to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _email_needs_recipients(self) -> FailureNotifyConfig:
        if self.smtp_conn_id and not self.email_to:
            raise ValueError("smtp_conn_id needs email_to (one or more addresses)")
        return self


class NotifyConfig(_Strict):
    on_failure: FailureNotifyConfig | None = None


class ProjectConfig(_Strict):
    project: str = Field(description="the DAG id")
    description: str = ""
    schedule: str | None = Field("0 2 * * *", description="cron or preset; null = only when triggered")
    build: BuildConfig
    images: ImagesConfig
    zones: dict[Literal["dev", "cleanroom", "prod"], ZoneConfig]
    registries: dict[Literal["dev-private", "public", "prod-private"], RegistryConfig]
    retries: dict[str, RetryConfig] = Field(default_factory=dict,
                                            description="'default', 'cleanroom' (its hops) or a task id")
    deploy: DeployConfig
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    tags: list[str] = Field(default_factory=list)
    # Where the file was read from; set by load_project, not by users.
    source: Annotated[str, Field(exclude=True)] = ""

    @field_validator("project")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} must start with a lowercase letter and use only a-z, 0-9, _ and - "
                             "(it becomes the DAG id)")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None or value.startswith("@"):
            if value not in (None, "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@once"):
                raise ValueError(f"{value!r} is not a schedule preset (@hourly, @daily, @weekly, @monthly)")
            return value
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression (e.g. '0 2 * * *' for 02:00 nightly)")
        return value

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: dict) -> dict:
        missing = [z for z in ZONES if z not in value]
        if missing:
            raise ValueError(f"missing zone(s) {', '.join(missing)}")
        return value

    @field_validator("registries")
    @classmethod
    def _registries(cls, value: dict) -> dict:
        missing = [r for r in REGISTRIES if r not in value]
        if missing:
            raise ValueError(f"missing registr(y/ies) {', '.join(missing)}")
        return value

    @field_validator("retries")
    @classmethod
    def _retry_keys(cls, value: dict) -> dict:
        allowed = {"default", "cleanroom", *HOPS}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; use 'default', 'cleanroom' or a task id "
                             f"({', '.join(NETWORK_HOPS)})")
        return value

    # -- what the DAG needs -------------------------------------------------------------
    def retry_for(self, task_id: str) -> RetryConfig:
        """Per task: the task's own entry, else its group's ('cleanroom'), else 'default'.

        The cleanroom hops cross the flaky link: unless configured, they get 5 retries.
        """
        if task_id in self.retries:
            return self.retries[task_id]
        group = task_id.split(".", 1)[0]
        if group == "cleanroom":
            return self.retries.get("cleanroom", RetryConfig(retries=5, retry_delay_s=15))
        return self.retries.get("default", RetryConfig())

    @property
    def project_dir(self) -> Path:
        return Path(self.source).parent

    @property
    def context_dir(self) -> Path:
        return (self.project_dir / self.build.context).resolve()


# -- loading -----------------------------------------------------------------------------------
def _interpolate(value: Any) -> Any:
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(2) if m.group(2) is not None else ""), value)
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


def _merge(defaults: dict, project: dict) -> dict:
    merged = dict(defaults)
    for key, value in project.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(str(path), where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read ({exc.strerror})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", f"must be a mapping of keys to values, not a {type(data).__name__}")
    return data


def _field_path(location: tuple) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def load_project(path: Path, defaults: dict | None = None) -> ProjectConfig:
    """Read and validate one project file (merged over `defaults`). Raises ConfigError."""
    raw = _read_yaml(path)
    raw.setdefault("project", path.stem)
    data = _interpolate(_merge(defaults or {}, raw))
    data["source"] = str(path)
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key (check the spelling; see dags/projects/README.md for the schema)"
            elif error["type"] == "missing":
                message = "required field is missing"
            problems.append(f"{_field_path(error['loc'])}: {message}")
        raise ConfigError(str(path), "", "; ".join(problems)) from None
    _check_files(config, path)
    return config


def _check_files(config: ProjectConfig, path: Path) -> None:
    context = config.context_dir
    if not context.is_dir():
        raise ConfigError(str(path), "build.context", f"folder {context} does not exist")
    for stage, stage_config in config.build.stages.items():
        dockerfile = (context / stage_config.dockerfile).resolve()
        if not dockerfile.is_relative_to(context):
            raise ConfigError(str(path), f"build.stages.{stage}.dockerfile",
                              f"{stage_config.dockerfile!r} is outside the build context {context}")
        if not dockerfile.is_file():
            raise ConfigError(str(path), f"build.stages.{stage}.dockerfile", f"{dockerfile} does not exist")


def load_defaults(projects_dir: Path) -> dict:
    path = projects_dir / DEFAULTS_FILE
    return _read_yaml(path) if path.exists() else {}


def project_files(projects_dir: Path) -> list[Path]:
    return sorted(p for p in projects_dir.glob("*.y*ml") if not p.name.startswith("_")
                  and p.suffix in (".yaml", ".yml"))


def load_all(projects_dir: Path) -> tuple[list[ProjectConfig], list[ConfigError]]:
    """Validate every project file in sorted order; return the good ones and the errors."""
    errors: list[ConfigError] = []
    try:
        defaults = load_defaults(projects_dir)
    except ConfigError as exc:
        return [], [exc]
    configs: list[ProjectConfig] = []
    seen: dict[str, str] = {}
    for path in project_files(projects_dir):
        try:
            config = load_project(path, defaults)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if config.project in seen:
            errors.append(ConfigError(str(path), "project", f"{config.project!r} is already the project of "
                                      f"{seen[config.project]}; project names (DAG ids) must be unique"))
            continue
        seen[config.project] = str(path)
        configs.append(config)
    return configs, errors
