"""Bring the three-zone sandbox up and down: three dockerd, three registries, one link."""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import socket
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from sandbox import images, processes
from sandbox.layout import LOOPBACK, REGISTRIES, ZONES, Layout

REQUIRED_PROGRAMS = {"dockerd": "docker.io", "containerd": "containerd", "docker-registry": "docker-registry"}


class SandboxError(RuntimeError):
    pass


def check_programs() -> None:
    missing = [package for program, package in REQUIRED_PROGRAMS.items() if not shutil.which(program)]
    if not images.BUSYBOX.exists():
        missing.append("busybox-static")
    if missing:
        raise SandboxError(
            f"sandbox: missing Debian packages: {' '.join(missing)}. "
            f"Run `make deps` (or `apt-get install {' '.join(missing)}`) and try again.")


# -- zones: one dockerd each ---------------------------------------------------------------
def _dockerd_pid_file(layout: Layout, zone: str) -> Path:
    return layout.pid_dir / f"dockerd-{zone}.pid"


def docker_ping(layout: Layout, zone: str) -> bool:
    sock_path = layout.docker_socket(zone)
    if not sock_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(sock_path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(1024)
    except OSError:
        return False


def start_zone(layout: Layout, zone: str) -> str:
    pid_file = _dockerd_pid_file(layout, zone)
    if processes.is_alive(processes.read_pid(pid_file)) and docker_ping(layout, zone):
        return "running"
    exec_root, data_root = layout.exec_root(zone), layout.data_root(zone)
    for folder in (exec_root, data_root):
        folder.mkdir(parents=True, exist_ok=True)
    argv = [
        "dockerd",
        "--data-root", str(data_root),
        "--exec-root", str(exec_root),
        "--host", layout.docker_host(zone),
        "--pidfile", str(exec_root / "dockerd.pid"),
        "--storage-driver", "overlay2",
        # Only one daemon may own docker0 and iptables; the sandbox's zones need neither:
        # containers use loopback or the host network.
        "--bridge", "none", "--iptables=false", "--ip-masq=false",
    ]
    processes.start(f"dockerd-{zone}", argv, pid_file, layout.log_dir / f"dockerd-{zone}.log")
    if not processes.wait_until(lambda: docker_ping(layout, zone), 60, 0.25):
        raise SandboxError(f"sandbox: the {zone} zone's dockerd did not answer on {layout.docker_host(zone)} "
                           f"within 60 s; see {layout.log_dir / f'dockerd-{zone}.log'}")
    return "started"


def stop_zone(layout: Layout, zone: str) -> str:
    stopped = processes.stop(_dockerd_pid_file(layout, zone), timeout=30)
    processes.unmount_below(layout.exec_root(zone), layout.data_root(zone))
    return "stopped" if stopped else "not running"


# -- registries: Debian's docker-registry (CNCF distribution 2.8) ---------------------------
def _registry_pid_file(layout: Layout, registry: str) -> Path:
    return layout.pid_dir / f"registry-{registry}.pid"


def registry_ping(address: str) -> bool:
    """The registry answers /v2/ (401 counts: the sandbox's registries require a login)."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (urllib.error.URLError, OSError):
        return False


REGISTRY_USER = "airlock"


def registry_credentials(layout: Layout) -> dict[str, str]:
    """The sandbox registries' login: one user, a random password made at the first `up`.

    Like real private registries, they refuse anonymous pushes and pulls; the password reaches
    Airflow only through the registry connections.
    """
    path = layout.state_dir / "registries" / "credentials.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"username": REGISTRY_USER, "password": secrets.token_urlsafe(18)}))
        path.chmod(0o600)
    return json.loads(path.read_text())


def _htpasswd(layout: Layout) -> Path:
    path = layout.state_dir / "registries" / "htpasswd"
    if not path.exists():
        creds = registry_credentials(layout)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # bcrypt through the system's libxcrypt; the registry accepts only bcrypt

            # bcrypt cost 4 (16 rounds), not 12: the registry checks the password on every request, and
            # at cost 12 that is ~0.25 s of CPU each here. A sandbox password guards nothing real.
            hashed = crypt.crypt(creds["password"], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        path.write_text(f"{creds['username']}:{hashed}\n")
        path.chmod(0o600)
    return path


def registry_config(layout: Layout, registry: str) -> str:
    return json.dumps({  # YAML is a superset of JSON
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": f"registry-{registry}"}},
        "storage": {
            "filesystem": {"rootdirectory": str(layout.registry_storage(registry))},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {"addr": layout.registry_address(registry), "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "auth": {"htpasswd": {"realm": f"airlock-sandbox-{registry}", "path": str(_htpasswd(layout))}},
    }, indent=2)


def start_registry(layout: Layout, registry: str) -> str:
    address = layout.registry_address(registry)
    pid_file = _registry_pid_file(layout, registry)
    if processes.is_alive(processes.read_pid(pid_file)) and registry_ping(address):
        return "running"
    if registry_ping(address):
        raise SandboxError(f"sandbox: something that is not this sandbox's {registry} registry already answers "
                           f"on {address}; stop it or set AIRLOCK_{registry.upper().replace('-', '_')}_PORT")
    layout.registry_storage(registry).mkdir(parents=True, exist_ok=True)
    config = layout.state_dir / "config" / f"registry-{registry}.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(registry_config(layout, registry))
    processes.start(f"registry-{registry}", ["docker-registry", "serve", str(config)], pid_file,
                    layout.log_dir / f"registry-{registry}.log")
    if not processes.wait_until(lambda: registry_ping(address), 30, 0.2):
        raise SandboxError(f"sandbox: the {registry} registry did not answer on http://{address}/v2/ within 30 s; "
                           f"see {layout.log_dir / f'registry-{registry}.log'}")
    return "started"


def stop_registry(layout: Layout, registry: str) -> str:
    return "stopped" if processes.stop(_registry_pid_file(layout, registry)) else "not running"


# -- the cleanroom link ------------------------------------------------------------------------
def _link_pid_file(layout: Layout) -> Path:
    return layout.pid_dir / "link.pid"


def link_ping(layout: Layout) -> bool:
    try:
        with urllib.request.urlopen(f"{layout.link_control_url}/stats", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_link(layout: Layout) -> str:
    pid_file = _link_pid_file(layout)
    if processes.is_alive(processes.read_pid(pid_file)) and link_ping(layout):
        return "running"
    argv = [sys.executable, "-m", "sandbox.link",
            "--listen", f"{LOOPBACK}:{layout.link_port}",
            "--target", layout.registry_address("prod-private"),
            "--control", f"{LOOPBACK}:{layout.link_control_port}"]
    processes.start("link", argv, pid_file, layout.log_dir / "link.log",
                    env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PATH": "/usr/bin:/bin"})
    if not processes.wait_until(lambda: link_ping(layout), 15, 0.1):
        raise SandboxError(f"sandbox: the link proxy did not answer on {layout.link_control_url} within 15 s; "
                           f"see {layout.log_dir / 'link.log'}")
    return "started"


def stop_link(layout: Layout) -> str:
    return "stopped" if processes.stop(_link_pid_file(layout)) else "not running"


# -- the description the pipeline reads --------------------------------------------------------
def connection_id(kind: str, name: str) -> str:
    return f"airlock_{kind}_{name.replace('-', '_')}"


def describe(layout: Layout) -> dict:
    zones = {zone: {"docker_host": layout.docker_host(zone), "connection": connection_id("zone", zone)}
             for zone in ZONES}
    registries = {
        registry: {
            "address": layout.registry_address(registry),
            "seen_from": {zone: layout.registry_address(registry, zone) for zone in ZONES},
            "connection": connection_id("registry", registry),
        }
        for registry in REGISTRIES
    }
    return {
        "state_dir": str(layout.state_dir),
        "zones": zones,
        "registries": registries,
        "link": {"address": f"{LOOPBACK}:{layout.link_port}", "control": layout.link_control_url,
                 "in_front_of": "prod-private", "used_by": "cleanroom"},
        "base_images": {"busybox": images.BUSYBOX_IMAGE, "runtime": images.RUNTIME_IMAGE, "sdk": images.SDK_IMAGE},
    }


def connections(layout: Layout) -> dict[str, dict]:
    """Airflow connections for the zones (Docker daemon URL) and registries (login; none in the sandbox)."""
    conns: dict[str, dict] = {}
    for zone in ZONES:
        conns[connection_id("zone", zone)] = {
            "conn_type": "generic",
            "description": f"Docker daemon of the {zone} zone (sandbox)",
            "extra": {"base_url": layout.docker_host(zone)},
        }
    creds = registry_credentials(layout)
    for registry in REGISTRIES:
        host, port = layout.registry_address(registry).split(":")
        conns[connection_id("registry", registry)] = {
            "conn_type": "docker",
            "description": f"{registry} registry (sandbox)",
            "host": host,
            "port": int(port),
            "login": creds["username"],
            "password": creds["password"],
            "extra": {"scheme": "http"},
        }
    return conns


def write_description(layout: Layout) -> None:
    description = describe(layout)
    layout.description_file.write_text(json.dumps(description, indent=2) + "\n")
    layout.connections_file.write_text(json.dumps(connections(layout), indent=2) + "\n")
    lines = ["# Written by `python -m sandbox up`; source it: set -a; . .sandbox/sandbox.env; set +a"]
    lines.append(f"AIRLOCK_SANDBOX_DIR={shlex.quote(str(layout.state_dir))}")
    for zone, info in description["zones"].items():
        lines.append(f"AIRLOCK_{zone.upper()}_DOCKER_HOST={shlex.quote(info['docker_host'])}")
    for registry, info in description["registries"].items():
        key = registry.upper().replace("-", "_")
        lines.append(f"AIRLOCK_{key}_REGISTRY={info['address']}")
        for zone, address in info["seen_from"].items():
            lines.append(f"AIRLOCK_{key}_REGISTRY_FROM_{zone.upper()}={address}")
    lines.append(f"AIRLOCK_LINK_CONTROL={layout.link_control_url}")
    lines.append(f"AIRLOCK_CACHE_DIR={shlex.quote(str(layout.state_dir / 'cleanroom-cache'))}")
    lines.append("# The sandbox's registries speak plain HTTP on loopback.")
    lines.append("AIRLOCK_REGISTRY_SCHEME=http")
    for conn_id, conn in connections(layout).items():
        lines.append(f"AIRFLOW_CONN_{conn_id.upper()}={shlex.quote(json.dumps(conn))}")
    layout.env_file.write_text("\n".join(lines) + "\n")


# -- up, down, status -------------------------------------------------------------------------
def up(layout: Layout, log=print) -> None:
    check_programs()
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    for registry in REGISTRIES:
        log(f"registry {registry:<12} {start_registry(layout, registry):<12} http://{layout.registry_address(registry)}")
    log(f"link {'':<16} {start_link(layout):<12} {LOOPBACK}:{layout.link_port} -> prod-private, "
        f"control {layout.link_control_url}")
    for zone in ZONES:
        log(f"zone {zone:<16} {start_zone(layout, zone):<12} {layout.docker_host(zone)}")
    built = images.seed_dev_zone(layout.docker_host("dev"), layout.runtime_mb)
    log(f"base images in dev zone: {', '.join(built) + ' built' if built else 'present'}")
    write_description(layout)
    log(f"description: {layout.description_file}  env: {layout.env_file}")


def down(layout: Layout, log=print) -> None:
    from sandbox.airflow_stack import AirflowStack

    log(f"airflow {'':<13} {AirflowStack(layout).stop()}")
    for zone in reversed(ZONES):
        log(f"zone {zone:<16} {stop_zone(layout, zone)}")
    log(f"link {'':<16} {stop_link(layout)}")
    for registry in REGISTRIES:
        log(f"registry {registry:<12} {stop_registry(layout, registry)}")
    if layout.run_dir.exists():
        leftovers = processes.unmount_below(layout.run_dir)
        if leftovers:
            log(f"unmounted {len(leftovers)} leftover mount(s) under {layout.run_dir}")
        shutil.rmtree(layout.run_dir, ignore_errors=True)


def status(layout: Layout) -> dict[str, bool]:
    result = {f"zone {zone}": docker_ping(layout, zone) for zone in ZONES}
    result.update({f"registry {r}": registry_ping(layout.registry_address(r)) for r in REGISTRIES})
    result["link"] = link_ping(layout)
    return result
