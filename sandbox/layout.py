"""Where every part of the sandbox lives: folders, sockets, ports.

Everything is derived from the checkout's path and a few environment variables, so that
`up`, `down`, the tests and the demo all agree without a config file.

Environment overrides:
    AIRLOCK_SANDBOX_DIR            state folder (default: <checkout>/.sandbox)
    AIRLOCK_DEV_PRIVATE_PORT       dev-private registry (default 5001)
    AIRLOCK_PUBLIC_PORT            public registry (default 5002)
    AIRLOCK_PROD_PRIVATE_PORT      prod-private registry (default 5003)
    AIRLOCK_LINK_PORT              the cleanroom link in front of prod-private (default 6003)
    AIRLOCK_LINK_CONTROL_PORT      the link's control port (default 6004)
    AIRLOCK_RUNTIME_MB             size of the runtime base image's payload (default 20)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
ZONES = ("dev", "cleanroom", "prod")
REGISTRIES = ("dev-private", "public", "prod-private")
DEFAULT_PORTS = {"dev-private": 5001, "public": 5002, "prod-private": 5003}
LOOPBACK = "127.0.0.1"


def _port(variable: str, default: int) -> int:
    value = os.environ.get(variable, "")
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"sandbox: environment variable {variable}={value!r} is not a TCP port (1-65535)")
    return int(value)


@dataclass(frozen=True)
class Layout:
    state_dir: Path
    run_dir: Path  # short path for sockets and exec-roots (unix socket paths are limited to ~107 bytes)
    registry_ports: dict[str, int]
    link_port: int
    link_control_port: int
    runtime_mb: int

    @classmethod
    def from_environment(cls) -> Layout:
        state_dir = Path(os.environ.get("AIRLOCK_SANDBOX_DIR", CHECKOUT / ".sandbox")).resolve()
        tag = hashlib.sha256(str(state_dir).encode()).hexdigest()[:8]
        ports = {name: _port(f"AIRLOCK_{name.upper().replace('-', '_')}_PORT", default)
                 for name, default in DEFAULT_PORTS.items()}
        runtime_mb = os.environ.get("AIRLOCK_RUNTIME_MB", "20")
        if not runtime_mb.isdigit():
            raise SystemExit(f"sandbox: AIRLOCK_RUNTIME_MB={runtime_mb!r} is not a whole number of megabytes")
        return cls(
            state_dir=state_dir,
            run_dir=Path("/run") / f"airlock-{tag}",
            registry_ports=ports,
            link_port=_port("AIRLOCK_LINK_PORT", 6003),
            link_control_port=_port("AIRLOCK_LINK_CONTROL_PORT", 6004),
            runtime_mb=int(runtime_mb),
        )

    # -- zones ------------------------------------------------------------------------
    def docker_socket(self, zone: str) -> Path:
        return self.run_dir / f"{zone}.sock"

    def docker_host(self, zone: str) -> str:
        return f"unix://{self.docker_socket(zone)}"

    def exec_root(self, zone: str) -> Path:
        return self.run_dir / zone

    def data_root(self, zone: str) -> Path:
        return self.state_dir / "zones" / zone

    # -- registries -------------------------------------------------------------------
    def registry_address(self, registry: str, seen_from: str | None = None) -> str:
        """host:port of `registry` as seen from `seen_from` (the cleanroom sees prod-private via the link)."""
        if registry == "prod-private" and seen_from == "cleanroom":
            return f"{LOOPBACK}:{self.link_port}"
        return f"{LOOPBACK}:{self.registry_ports[registry]}"

    def registry_storage(self, registry: str) -> Path:
        return self.state_dir / "registries" / registry

    @property
    def link_control_url(self) -> str:
        return f"http://{LOOPBACK}:{self.link_control_port}"

    # -- bookkeeping ------------------------------------------------------------------
    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "sandbox.env"

    @property
    def description_file(self) -> Path:
        return self.state_dir / "sandbox.json"

    @property
    def connections_file(self) -> Path:
        return self.state_dir / "connections.json"
