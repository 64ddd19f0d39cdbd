"""Start background programs in their own session, remember them by PID, stop exactly those."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def start(name: str, argv: list[str], pid_file: Path, log_file: Path, env: dict[str, str] | None = None) -> int:
    """Start `argv` detached (own session, output to `log_file`) and record its PID."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, close_fds=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pid_file: Path, timeout: float = 30.0) -> bool:
    """Stop the process recorded in `pid_file` (SIGTERM, then SIGKILL after `timeout`).

    Returns True if a running process was stopped. Only that PID is signalled.
    """
    pid = read_pid(pid_file)
    stopped = False
    if is_alive(pid):
        assert pid is not None
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not is_alive(pid), timeout):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not is_alive(pid), 10)
        stopped = True
    pid_file.unlink(missing_ok=True)
    return stopped


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def unmount_below(*roots: Path) -> list[str]:
    """Unmount (lazily) every mount point below `roots`, deepest first. Returns what was unmounted."""
    prefixes = [str(root.resolve()) + "/" for root in roots]
    with open("/proc/mounts") as mounts:
        points = [line.split()[1].encode().decode("unicode_escape") for line in mounts]
    below = sorted({p for p in points if any(p.startswith(prefix) for prefix in prefixes)},
                   key=len, reverse=True)
    for point in below:
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    return below
