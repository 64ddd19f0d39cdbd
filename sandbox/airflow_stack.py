"""A real Airflow for the sandbox: `airflow standalone` (api-server, scheduler, dag-processor,
triggerer; LocalExecutor on SQLite) with this checkout's dags/ and plugins/, the sandbox's
connections in its environment, and a small REST client to trigger and watch runs.

    python -m sandbox airflow-up      start it (idempotent) and print where to log in
    python -m sandbox airflow-down    stop it (SIGINT, as Airflow expects)
`python -m sandbox down` stops it too.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sandbox import processes
from sandbox.layout import CHECKOUT, Layout

USER = "admin"


class AirflowError(RuntimeError):
    pass


def _read_env_file(path: Path) -> dict[str, str]:
    """Parse the sandbox's env file (KEY=value lines, values possibly single-quoted)."""
    env: dict[str, str] = {}
    if not path.exists():
        return env
    import shlex
    for line in path.read_text().splitlines():
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        parts = shlex.split(value)
        env[key] = parts[0] if parts else ""
    return env


@dataclass
class AirflowStack:
    layout: Layout

    @property
    def home(self) -> Path:
        return self.layout.state_dir / "airflow"

    @property
    def port(self) -> int:
        return int(os.environ.get("AIRLOCK_AIRFLOW_PORT", "8080"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.layout.pid_dir / "airflow.pid"

    @property
    def password_file(self) -> Path:
        return self.home / "passwords.json"

    @property
    def password(self) -> str:
        return json.loads(self.password_file.read_text())[USER]

    def env(self) -> dict[str, str]:
        # Airflow settings of the calling process (a test run's, say) are not this Airflow's.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(_read_env_file(self.layout.env_file))
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(CHECKOUT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(CHECKOUT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Two cores run everything here: give the task runners' API calls room while it starts.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}",
        })
        return env

    # -- lifecycle ---------------------------------------------------------------------------
    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=3) as response:
                data = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return all(data.get(part, {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "dag_processor"))

    def running(self) -> bool:
        return processes.is_alive(processes.read_pid(self.pid_file))

    def start(self, timeout: float = 180) -> str:
        if self.running() and self.healthy():
            return "running"
        if self.running():
            state = "starting"
        else:
            (CHECKOUT / "plugins").mkdir(exist_ok=True)  # must exist before Airflow starts
            self.home.mkdir(parents=True, exist_ok=True)
            if not self.password_file.exists():
                self.password_file.write_text(json.dumps({USER: secrets.token_urlsafe(12)}))
            airflow = str(Path(sys.executable).parent / "airflow")
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.layout.log_dir / "airflow.log", "ab")
            proc = subprocess.Popen(
                [airflow, "standalone"], env=self.env(), cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                # A process started from a script may inherit SIGINT ignored; Airflow stops on SIGINT.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            log.close()
            self.pid_file.write_text(f"{proc.pid}\n")
            state = "started"
        if not processes.wait_until(self.healthy, timeout, 1.0):
            raise AirflowError(f"Airflow did not become healthy at {self.url} within {timeout:.0f} s; "
                               f"see {self.layout.log_dir / 'airflow.log'}")
        return state

    def stop(self, timeout: float = 60) -> str:
        pid = processes.read_pid(self.pid_file)
        if not processes.is_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return "not running"
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        if not processes.wait_until(lambda: not processes.is_alive(pid), timeout, 0.5):
            # Its components are in its own process group, which this sandbox created.
            os.killpg(pid, signal.SIGTERM)
            processes.wait_until(lambda: not processes.is_alive(pid), 15, 0.5)
        try:  # whatever of its group is left (the group is ours: start_new_session)
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.pid_file.unlink(missing_ok=True)
        return "stopped"

    # -- REST API ----------------------------------------------------------------------------
    def token(self) -> str:
        body = json.dumps({"username": USER, "password": self.password}).encode()
        request = urllib.request.Request(f"{self.url}/auth/token", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["access_token"]

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/api/v2{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise AirflowError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.api("GET", f"/dags/{dag_id}")
            except AirflowError:
                if time.monotonic() > deadline:
                    errors = self.api("GET", "/importErrors").get("import_errors", [])
                    raise AirflowError(f"DAG {dag_id} did not appear within {timeout:.0f} s; "
                                       f"import errors: {errors}") from None
                time.sleep(2)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise AirflowError(f"run {run_id} of {dag_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(2)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        quoted = urllib.request.quote(run_id, safe="")
        data = self.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")
        return {ti["task_id"]: ti for ti in data["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
        quoted = urllib.request.quote(run_id, safe="")
        data = self.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/xcomEntries/{key}")
        return data["value"]
