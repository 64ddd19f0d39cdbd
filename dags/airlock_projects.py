"""Airlock's Airflow DAG factory: one DAG per project file in dags/projects/.

Files starting with "_" hold shared defaults, not projects.
Parsing does no network, database or Variable work: it reads YAML files and builds DAGs.
A broken project file is skipped here, so it never hides the other projects; the DAG file
airlock_project_errors.py reports it as an Airflow import error naming the file, field and problem.
"""

from __future__ import annotations

import logging
from pathlib import Path

from airflow.sdk import DAG

from airlock.config import load_all
from airlock.dag import build_dag

log = logging.getLogger("airlock.factory")
PROJECTS_DIR = Path(__file__).resolve().parent / "projects"

_configs, _errors = load_all(PROJECTS_DIR)
for _error in _errors:
    log.error("Airlock project not loaded: %s", _error)
for _config in _configs:
    _dag: DAG = build_dag(_config)
    globals()[_config.project] = _dag
    del _dag
