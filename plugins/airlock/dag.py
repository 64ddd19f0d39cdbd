"""Turn one project's config into one DAG: three build stages and the seven promotion hops.

    build ─ artifacts ─ third_party ─ app ─ remove_artifacts (always runs)
                           │           └─ dev.push_app_dev_private ─ cleanroom.pull_app_dev_private ─┐
                           └─ dev.push_third_party_public ─ prod.pull_third_party_public             │
                                    ─ prod.push_third_party_prod_private ─ cleanroom.push_app_prod_private
                                                                                  ─ prod.deploy ─ verify

Every task runs in its zone: the zone's Docker connection and the zone's Celery queue. Images
move by digest once built: each hop after a push takes the digest from that push's XCom.
The code for each task id is listed in airlock/operators/__init__.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, BaseOperator, Param, TaskGroup, TriggerRule

from airlock.config import ProjectConfig
from airlock.notify import failure_notifiers
from airlock.operators import (
    AssembleOperator,
    BuildImageOperator,
    DeployOperator,
    PullImageOperator,
    PushImageOperator,
    RelayFetchOperator,
    RelayPushOperator,
    RemoveImageOperator,
    VerifyOperator,
)
from airlock.operators.base import BUILD, PARTS
from airlock.operators.summary import SummaryOperator

RELEASE = "{{ params.release or dag_run.run_after.strftime('%Y%m%dT%H%M%S') }}"


def _xcom(task_id: str, key: str = "return_value") -> str:
    return "{{ ti.xcom_pull(task_ids='" + task_id + "', key='" + key + "') }}"


class _Builder:
    def __init__(self, config: ProjectConfig):
        self.config = config

    def zone(self, zone: str, task_id: str) -> dict[str, Any]:
        """Zone, connection, queue and retry policy of one task (task_id is the full id, group.task)."""
        zone_config = self.config.zones[zone]  # type: ignore[index]
        retry = self.config.retry_for(task_id)
        kwargs: dict[str, Any] = {
            "zone": zone,
            "zone_conn_id": zone_config.docker_conn_id,
            "queue": zone_config.queue,
            "retries": retry.retries,
            "retry_delay": timedelta(seconds=retry.retry_delay_s),
            "retry_exponential_backoff": retry.backoff,
            "max_retry_delay": timedelta(seconds=retry.max_retry_delay_s),
        }
        if retry.timeout_s:
            kwargs["execution_timeout"] = timedelta(seconds=retry.timeout_s)
        return kwargs

    def registry(self, registry: str, zone: str) -> dict[str, Any]:
        reg = self.config.registries[registry]  # type: ignore[index]
        return {"registry": registry, "registry_address": reg.address_from(zone), "registry_conn_id": reg.conn_id,
                "registry_scheme": reg.scheme}


def local_image(config: ProjectConfig, stage: str) -> str:
    """The dev daemon's local tag of a stage's image (never pushed under this name)."""
    return f"airlock-local/{config.project}/{stage.replace('_', '-')}:{RELEASE}"


def build_dag(config: ProjectConfig) -> DAG:
    b = _Builder(config)
    images = config.images
    artifacts_image = local_image(config, "artifacts")
    third_party_image = local_image(config, "third_party")
    app_image = local_image(config, "app")
    build_args = {
        **config.build.args,
        "ARTIFACTS_IMAGE": artifacts_image,
        "THIRD_PARTY_IMAGE": third_party_image,
        "AIRLOCK_OWN_FILES": " ".join(config.build.own_files),
    }
    labels = {"airlock.project": config.project}

    with DAG(
        dag_id=config.project,
        description=config.description or f"Build and promote {config.project} across dev, cleanroom and prod",
        schedule=config.schedule,
        catchup=False,
        max_active_runs=1,
        default_args={"on_failure_callback": failure_notifiers(
            config.notify.on_failure.model_dump() if config.notify.on_failure else None) or None},
        tags=["airlock", *config.tags],
        doc_md=__doc__,
        params={
            "part": Param(BUILD, enum=list(PARTS), title="What to run",
                          description="build and promote: the three stages, then every hop. promote an existing "
                                      "release: no build; the release tag must already be in dev-private and "
                                      "public. deploy an existing release: only the deploy (and verify) of a "
                                      "release already in prod-private."),
            "deploy": Param(True, type="boolean", title="Deploy in prod",
                            description="Off: promote into prod-private, but leave the running release as it is."),
            "dry_run": Param(False, type="boolean", title="Dry run",
                             description="Build and push on the dev side, then only plan the cleanroom hop: which "
                                         "blobs would cross the metered link and how many bytes. Nothing is sent "
                                         "to prod."),
            "release": Param("", type="string", title="Release tag", pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$",
                             description="Tag for the images in every registry: letters, digits, _ . - (at "
                                         "most 128). Empty: the run's date and time, e.g. 20261203T020000."),
        },
    ) as dag:
        with TaskGroup("build", tooltip="dev zone: the three build stages"):
            stages = {}
            for stage, image in (("artifacts", artifacts_image), ("third_party", third_party_image),
                                 ("app", app_image)):
                stage_config = config.build.stages[stage]  # type: ignore[index]
                stages[stage] = BuildImageOperator(
                    task_id=stage, stage=stage, context_dir=str(config.context_dir),
                    dockerfile=stage_config.dockerfile, target=stage_config.target, image=image,
                    build_args=build_args, labels=labels, build_timeout=config.build.timeout_s,
                    split_from=third_party_image if stage == "app" else None, own_files=config.build.own_files,
                    skip_when=["not_building"],
                    **b.zone("dev", f"build.{stage}"))
            remove_artifacts = RemoveImageOperator(
                task_id="remove_artifacts", image=artifacts_image, trigger_rule=TriggerRule.ALL_DONE,
                **b.zone("dev", "build.remove_artifacts"))
            stages["artifacts"] >> stages["third_party"] >> stages["app"] >> remove_artifacts

        with TaskGroup("dev", tooltip="dev zone: hops 1 and 2"):
            push_app_dev_private = PushImageOperator(
                task_id="push_app_dev_private", image=app_image, release=RELEASE, repository=images.app,
                refuse=[artifacts_image], source_files=config.build.source_files,
                resolve_when_not_building=True, trigger_rule=TriggerRule.NONE_FAILED,
                **b.registry("dev-private", "dev"), **b.zone("dev", "dev.push_app_dev_private"))
            push_third_party_public = PushImageOperator(
                task_id="push_third_party_public", image=third_party_image, release=RELEASE,
                repository=images.third_party, refuse=[artifacts_image], source_files=config.build.source_files,
                resolve_when_not_building=True, trigger_rule=TriggerRule.NONE_FAILED,
                **b.registry("public", "dev"),
                **b.zone("dev", "dev.push_third_party_public"))

        with TaskGroup("prod", tooltip="prod zone: hops 3, 4 and 7"):
            public_from_prod = b.registry("public", "prod")
            pull_third_party_public = PullImageOperator(
                task_id="pull_third_party_public", repository=images.third_party,
                digest=_xcom("dev.push_third_party_public"), **public_from_prod,
                skip_when=["dry_run", "deploy_existing"], **b.zone("prod", "prod.pull_third_party_public"))
            push_third_party_prod_private = PushImageOperator(
                task_id="push_third_party_prod_private",
                image=f"{public_from_prod['registry_address']}/{images.third_party}@"
                      + _xcom("dev.push_third_party_public"),
                expect_digest=_xcom("dev.push_third_party_public"), release=RELEASE,
                repository=images.third_party, **b.registry("prod-private", "prod"),
                skip_when=["dry_run", "deploy_existing"], **b.zone("prod", "prod.push_third_party_prod_private"))
            assemble = AssembleOperator(
                task_id="assemble_app_prod_private", release=RELEASE, staged_from="cleanroom.push_app_prod_private",
                registry=b.registry("prod-private", "prod"), skip_when=["dry_run", "deploy_existing"],
                trigger_rule=TriggerRule.NONE_FAILED, **b.zone("prod", "prod.assemble_app_prod_private"))
            deploy = DeployOperator(
                task_id="deploy", digest=_xcom("dev.push_app_dev_private"), release=RELEASE,
                project=config.project, repository=images.app, container_name=config.deploy.container_name,
                environment=dict(config.deploy.environment), ports=dict(config.deploy.ports),
                network_mode=config.deploy.network_mode, command=config.deploy.command,
                health=config.deploy.health.model_dump(), **b.registry("prod-private", "prod"),
                skip_when=["dry_run", "no_deploy"], trigger_rule=TriggerRule.NONE_FAILED,
                **b.zone("prod", "prod.deploy"))

        with TaskGroup("cleanroom", tooltip="cleanroom: hops 5 and 6, over the metered link"):
            dev_private_from_cleanroom = b.registry("dev-private", "cleanroom")
            prod_private_from_cleanroom = b.registry("prod-private", "cleanroom")
            promotion = config.promotion
            pull_app_dev_private: BaseOperator
            push_app_prod_private: BaseOperator
            if promotion.transport == "relay":
                relay_args: dict[str, Any] = dict(
                    repository=images.app, digest=_xcom("dev.push_app_dev_private"),
                    source=dev_private_from_cleanroom, target=prod_private_from_cleanroom,
                    mount_from=[images.third_party], cache_dir=promotion.cache_dir,
                    chunk_size=promotion.chunk_size_kb * 1024,
                    resume=config.registries["prod-private"].resume)
                pull_app_dev_private = RelayFetchOperator(
                    task_id="pull_app_dev_private", **relay_args, skip_when=["deploy_existing"],
                    **b.zone("cleanroom", "cleanroom.pull_app_dev_private"))
                push_app_prod_private = RelayPushOperator(
                    task_id="push_app_prod_private", release=RELEASE, **relay_args, skip_when=["deploy_existing"],
                    trigger_rule=TriggerRule.NONE_FAILED,
                    **b.zone("cleanroom", "cleanroom.push_app_prod_private"))
            else:
                pull_app_dev_private = PullImageOperator(
                    task_id="pull_app_dev_private", repository=images.app, skip_when=["deploy_existing"],
                    digest=_xcom("dev.push_app_dev_private"), **dev_private_from_cleanroom,
                    **b.zone("cleanroom", "cleanroom.pull_app_dev_private"))
                push_app_prod_private = PushImageOperator(
                    task_id="push_app_prod_private",
                    image=f"{dev_private_from_cleanroom['registry_address']}/{images.app}@"
                          + _xcom("dev.push_app_dev_private"),
                    expect_digest=_xcom("dev.push_app_dev_private"), release=RELEASE, repository=images.app,
                    mount_from=[images.third_party], mount_source=dev_private_from_cleanroom,
                    skip_when=["deploy_existing"], trigger_rule=TriggerRule.NONE_FAILED,
                    **prod_private_from_cleanroom, **b.zone("cleanroom", "cleanroom.push_app_prod_private"))

        verify = VerifyOperator(
            task_id="verify", digest=_xcom("dev.push_app_dev_private"), release=RELEASE, repository=images.app,
            container_name=config.deploy.container_name, layers_from="dev.push_app_dev_private",
            skip_when=["dry_run", "no_deploy"],
            **b.registry("prod-private", "prod"), **b.zone("prod", "verify"))

        stages["third_party"] >> push_third_party_public
        stages["app"] >> push_app_dev_private
        push_third_party_public >> pull_third_party_public >> push_third_party_prod_private
        push_app_dev_private >> pull_app_dev_private
        [push_third_party_prod_private, pull_app_dev_private] >> push_app_prod_private >> assemble >> deploy
        deploy >> verify
        summary = SummaryOperator(task_id="summary", project=config.project, release=RELEASE,
                                  trigger_rule=TriggerRule.ALL_DONE, queue=config.zones["dev"].queue)
        [verify, remove_artifacts] >> summary
    return dag
