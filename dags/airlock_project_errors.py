"""Airflow import errors for broken Airlock project files (this file defines no DAG).

The DAG factory (airlock_projects.py) loads every valid project file and skips broken ones, so
that one bad file never hides the other projects' DAGs. This file makes the broken ones loud:
it raises one error naming each broken file, the field and the problem, which Airflow shows
under "DAG Import Errors" in the UI and in `airflow dags list-import-errors`.
"""

from __future__ import annotations

from pathlib import Path

from airlock.config import load_all

PROJECTS_DIR = Path(__file__).resolve().parent / "projects"


class BrokenProjectFiles(Exception):
    """One or more files in dags/projects/ do not validate; their DAGs are not loaded."""


_, _errors = load_all(PROJECTS_DIR)
if _errors:
    _lines = "\n".join(f"- {error}" for error in _errors)
    _files = "file" if len(_errors) == 1 else "files"
    raise BrokenProjectFiles(f"{len(_errors)} Airlock project {_files} not loaded (the other projects' DAGs "
                             f"are unaffected):\n{_lines}")
