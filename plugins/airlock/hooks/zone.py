"""One zone's Docker daemon, from an Airflow connection.

The connection (conn_type `generic`) says where the daemon is and how to reach it:
    extra.base_url     unix:///run/docker.sock, tcp://host:2376, https://host:2376
    extra.ca_cert, extra.client_cert, extra.client_key   paths, for TLS to a remote daemon
    extra.tls_verify   default true when TLS files are given
The client itself comes from the Docker provider's DockerHook. Registry logins are not done
on the daemon: each push or pull passes its registry's credentials (see RegistryHook).
"""

from __future__ import annotations

from functools import cached_property

from airflow.providers.docker.hooks.docker import DockerHook
from airflow.sdk import BaseHook
from docker import APIClient

from airlock.exceptions import DockerDaemonError


class ZoneDockerHook(BaseHook):
    conn_name_attr = "zone_conn_id"
    default_conn_name = "airlock_zone_dev"
    conn_type = "generic"
    hook_name = "Airlock zone (Docker daemon)"

    def __init__(self, zone: str, zone_conn_id: str, timeout: int = 600) -> None:
        super().__init__()
        self.zone = zone
        self.zone_conn_id = zone_conn_id
        self.timeout = timeout

    @cached_property
    def base_url(self) -> str:
        conn = self.get_connection(self.zone_conn_id)
        url = conn.extra_dejson.get("base_url") or conn.host
        if not url:
            raise DockerDaemonError(
                f"the {self.zone} zone's connection {self.zone_conn_id!r} has no Docker daemon URL",
                advice="Set extra.base_url (e.g. unix:///run/docker.sock or tcp://host:2376) on that connection.",
                retryable=False)
        return url

    @cached_property
    def api_client(self) -> APIClient:
        conn = self.get_connection(self.zone_conn_id)
        extra = conn.extra_dejson
        tls = None
        if extra.get("ca_cert") or extra.get("client_cert"):
            tls = DockerHook.construct_tls_config(
                ca_cert=extra.get("ca_cert"), client_cert=extra.get("client_cert"),
                client_key=extra.get("client_key"), verify=bool(extra.get("tls_verify", True)))
        hook = DockerHook(docker_conn_id=None, base_url=self.base_url, tls=tls, timeout=self.timeout)
        try:
            return hook.get_conn()
        except Exception as exc:
            raise DockerDaemonError(f"cannot reach the {self.zone} zone's Docker daemon", where=self.base_url,
                                    cause=str(exc)[:300], retryable=True,
                                    advice="A retry may help if the daemon is restarting; otherwise check "
                                           f"that dockerd runs and connection {self.zone_conn_id!r} points at it."
                                    ) from None

    def get_conn(self) -> APIClient:
        return self.api_client
