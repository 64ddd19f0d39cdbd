"""Sample project files for the unit tests, written into a temporary dags/projects folder."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

DEFAULTS = {
    "zones": {
        "dev": {"docker_conn_id": "airlock_zone_dev", "queue": "dev"},
        "cleanroom": {"docker_conn_id": "airlock_zone_cleanroom", "queue": "cleanroom"},
        "prod": {"docker_conn_id": "airlock_zone_prod", "queue": "prod"},
    },
    "registries": {
        "dev-private": {"conn_id": "airlock_registry_dev_private", "address": "dev.example:5000"},
        "public": {"address": "public.example"},
        "prod-private": {"conn_id": "airlock_registry_prod_private", "address": "prod.example:5000",
                         "seen_from": {"cleanroom": "link.example:6003"}},
    },
}

PROJECT = {
    "project": "shop",
    "build": {
        "context": "src",
        "own_files": ["Shop.*"],
        "stages": {
            "artifacts": {"dockerfile": "artifacts.dockerfile"},
            "third_party": {"dockerfile": "third-party.dockerfile"},
            "app": {"dockerfile": "app.dockerfile"},
        },
    },
    "images": {"third_party": "shop/third-party", "app": "shop/app"},
    "deploy": {"container_name": "shop"},
}


def write_projects(root: Path, projects: dict[str, object] | None = None, defaults: object = DEFAULTS) -> Path:
    """Write dags/projects/ with _defaults.yaml and the given files (name -> YAML data or raw text)."""
    projects_dir = root / "projects"
    projects_dir.mkdir(parents=True, exist_ok=True)
    context = projects_dir / "src"
    context.mkdir(exist_ok=True)
    for name in ("artifacts.dockerfile", "third-party.dockerfile", "app.dockerfile"):
        (context / name).write_text("FROM scratch\n")
    (projects_dir / "_defaults.yaml").write_text(defaults if isinstance(defaults, str) else yaml.safe_dump(defaults))
    for name, data in (projects if projects is not None else {"shop.yaml": PROJECT}).items():
        (projects_dir / name).write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return projects_dir


def project(**changes) -> dict:
    """PROJECT with dotted-path changes: project(**{"build.own_files": []}); None deletes the key."""
    data = copy.deepcopy(PROJECT)
    for path, value in changes.items():
        node = data
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data
