from pathlib import Path

import pytest

from airlock.config import load_all, load_defaults, load_project
from airlock.exceptions import ConfigError

from .projects import PROJECT, project, write_projects


def test_a_valid_project_merges_the_shared_defaults(tmp_path: Path):
    projects_dir = write_projects(tmp_path)
    config = load_project(projects_dir / "shop.yaml", load_defaults(projects_dir))
    assert config.project == "shop"
    assert config.zones["cleanroom"].queue == "cleanroom"
    assert config.registries["prod-private"].address_from("cleanroom") == "link.example:6003"
    assert config.registries["prod-private"].address_from("prod") == "prod.example:5000"
    assert config.context_dir == (projects_dir / "src").resolve()
    assert config.schedule == "0 2 * * *"  # nightly by default


def test_cleanroom_hops_retry_at_least_five_times_by_default(tmp_path: Path):
    config = load_project(write_projects(tmp_path) / "shop.yaml", load_defaults(tmp_path / "projects"))
    assert config.retry_for("cleanroom.push_app_prod_private").retries == 5
    assert config.retry_for("dev.push_app_dev_private").retries == 2


def test_project_keys_override_defaults_and_environment_is_read(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SHOP_REGISTRY", "other.example:443")
    data = project(**{"registries": {"public": {"address": "${SHOP_REGISTRY}"}},
                      "retries": {"cleanroom.push_app_prod_private": {"retries": 9}}})
    projects_dir = write_projects(tmp_path, {"shop.yaml": data})
    config = load_project(projects_dir / "shop.yaml", load_defaults(projects_dir))
    assert config.registries["public"].address == "other.example:443"
    assert config.registries["dev-private"].address == "dev.example:5000"
    assert config.retry_for("cleanroom.push_app_prod_private").retries == 9


# Each broken file: (its content, text the error must contain). The error always names the file.
BROKEN = {
    "not_a_mapping": ("- just\n- a list\n", "must be a mapping"),
    "bad_yaml": ("project: [unclosed\n", "not valid YAML"),
    "unknown_key": (project(colour="blue"), "colour: unknown key"),
    "unknown_nested_key": (project(**{"build.dockerfiles": "x"}), "build.dockerfiles: unknown key"),
    "missing_stage": (project(**{"build.stages.app": None}), "missing stage(s) app"),
    "unknown_stage": (project(**{"build.stages.tests": {"dockerfile": "x"}}), "build.stages.tests"),
    "missing_build": (project(build=None), "build: required field is missing"),
    "empty_patterns": (project(**{"build.own_files": []}), "build.own_files"),
    "blank_pattern": (project(**{"build.own_files": ["  "]}), "non-empty name pattern"),
    "match_all_pattern": (project(**{"build.own_files": ["*"]}), "matches every file"),
    "wrong_type": (project(**{"build.own_files": "Shop.*"}), "build.own_files"),
    "bad_repository": (project(**{"images.app": "Shop/App"}), "images.app"),
    "same_repositories": (project(**{"images.app": "shop/third-party"}), "must be different"),
    "artifacts_repository": (project(**{"images.app": "shop/artifacts"}), "never pushed"),
    "bad_cron": (project(schedule="every night"), "not a valid cron"),
    "bad_preset": (project(schedule="@fortnightly"), "not a schedule preset"),
    "bad_project_name": (project(project="Shop Service"), "project:"),
    "bad_registry_address": (project(**{"registries": {"public": {"address": "http://x"}}}), "registries.public"),
    "dockerfile_outside_context": (project(**{"build.stages.app.dockerfile": "../../etc/passwd"}),
                                   "outside the build context"),
    "missing_dockerfile": (project(**{"build.stages.app.dockerfile": "nope.dockerfile"}), "does not exist"),
    "missing_context": (project(**{"build.context": "nowhere"}), "build.context"),
    "bad_retry_key": (project(retries={"cleanroom.push": {"retries": 3}}), "unknown key(s) cleanroom.push"),
    "negative_retries": (project(retries={"default": {"retries": -1}}), "retries.default.retries"),
    "bad_container_name": (project(**{"deploy.container_name": "my app"}), "deploy.container_name"),
    "missing_deploy": (project(deploy=None), "deploy: required field is missing"),
    "bad_zone": (project(zones={"qa": {"docker_conn_id": "x", "queue": "qa"}}), "zones.qa"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_project_files_are_explained_by_file_and_field(tmp_path: Path, name: str):
    content, expected = BROKEN[name]
    projects_dir = write_projects(tmp_path, {f"{name}.yaml": content})
    with pytest.raises(ConfigError) as error:
        load_project(projects_dir / f"{name}.yaml", load_defaults(projects_dir))
    message = str(error.value)
    assert f"{name}.yaml" in message
    assert expected in message


def test_a_broken_file_does_not_hide_the_other_projects(tmp_path: Path):
    projects_dir = write_projects(tmp_path, {
        "a_broken.yaml": project(project="broken", schedule="nope"),
        "shop.yaml": PROJECT,
        "zoo.yaml": project(project="zoo"),
        "zz_duplicate.yaml": project(project="zoo"),
    })
    configs, errors = load_all(projects_dir)
    assert [c.project for c in configs] == ["shop", "zoo"]
    assert len(errors) == 2
    assert "a_broken.yaml" in str(errors[0])
    assert "zz_duplicate.yaml" in str(errors[1]) and "must be unique" in str(errors[1])


def test_files_starting_with_underscore_are_not_projects(tmp_path: Path):
    projects_dir = write_projects(tmp_path)
    (projects_dir / "_notes.yaml").write_text("anything: goes\n")
    configs, errors = load_all(projects_dir)
    assert [c.project for c in configs] == ["shop"] and errors == []


def test_the_example_project_files_validate():
    checkout = Path(__file__).resolve().parents[2]
    defaults = load_defaults(checkout / "dags" / "projects")
    hello = load_project(checkout / "dags" / "projects" / "hello.yaml", defaults)
    assert hello.context_dir == checkout / "examples" / "hello"
    aspnetcore = load_project(checkout / "examples" / "aspnetcore" / "myproject.yaml", defaults)
    assert aspnetcore.build.own_files == ["MyProject*"]
    assert aspnetcore.context_dir == checkout / "examples" / "aspnetcore"
