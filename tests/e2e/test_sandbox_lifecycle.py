"""`up` twice and `down` twice are safe, on a second sandbox with its own folder and ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from sandbox import processes
from sandbox.layout import CHECKOUT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "sandbox", command], cwd=CHECKOUT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def recorded_pids(state_dir: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state_dir / "pids").glob("*.pid")}


def mounts_below(*roots: Path) -> list[str]:
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if any(p.startswith(f"{root}/") for root in roots)]


def test_up_twice_and_down_twice(tmp_path: Path):
    state_dir = tmp_path / "sandbox"
    env = dict(os.environ, AIRLOCK_SANDBOX_DIR=str(state_dir), AIRLOCK_RUNTIME_MB="1",
               AIRLOCK_DEV_PRIVATE_PORT=str(free_port()), AIRLOCK_PUBLIC_PORT=str(free_port()),
               AIRLOCK_PROD_PRIVATE_PORT=str(free_port()), AIRLOCK_LINK_PORT=str(free_port()),
               AIRLOCK_LINK_CONTROL_PORT=str(free_port()))
    try:
        first = run("up", env)
        assert first.count("started") == 7
        pids = recorded_pids(state_dir)
        assert len(pids) == 7 and all(processes.is_alive(pid) for pid in pids.values())

        second = run("up", env)
        assert second.count("running") == 7 and "started" not in second
        assert recorded_pids(state_dir) == pids

        status = subprocess.run([sys.executable, "-m", "sandbox", "status"], cwd=CHECKOUT, env=env)
        assert status.returncode == 0

        run("down", env)
        assert not any(processes.is_alive(pid) for pid in pids.values())
        assert recorded_pids(state_dir) == {}
        run_dirs = [Path(line.split("=", 1)[1].strip("'").removeprefix("unix://")).parent
                    for line in (state_dir / "sandbox.env").read_text().splitlines()
                    if line.startswith("AIRLOCK_DEV_DOCKER_HOST=")]
        assert mounts_below(state_dir, *run_dirs) == []
        assert not any(d.exists() for d in run_dirs)

        third = run("down", env)
        assert "not running" in third
        status = subprocess.run([sys.executable, "-m", "sandbox", "status"], cwd=CHECKOUT, env=env,
                                capture_output=True)
        assert status.returncode == 1
    finally:
        subprocess.run([sys.executable, "-m", "sandbox", "down"], cwd=CHECKOUT, env=env, capture_output=True)
