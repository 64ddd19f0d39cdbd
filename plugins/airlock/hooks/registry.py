"""A registry's credentials, from an Airflow connection, for docker-py and the registry client.

The connection (conn_type `docker`): login and password (none for an anonymous registry).
The registry's address is the project's, as seen from the zone that uses it: the cleanroom
reaches prod-private through the metered link at another address than prod does.
"""

from __future__ import annotations

from functools import cached_property

from airflow.sdk import BaseHook

from airlock.registry import RegistryClient


class RegistryHook(BaseHook):
    conn_name_attr = "registry_conn_id"
    default_conn_name = "airlock_registry_dev_private"
    conn_type = "docker"
    hook_name = "Airlock registry"

    def __init__(self, registry: str, address: str, registry_conn_id: str | None = None,
                 scheme: str = "https") -> None:
        super().__init__()
        self.registry = registry
        self.address = address
        self.registry_conn_id = registry_conn_id
        self.scheme = scheme

    @cached_property
    def _credentials(self) -> tuple[str | None, str | None]:
        if not self.registry_conn_id:
            return None, None
        conn = self.get_connection(self.registry_conn_id)
        return conn.login or None, conn.password or None

    def auth_config(self) -> dict | None:
        """What docker-py's push and pull take as `auth_config`; None for anonymous registries."""
        username, password = self._credentials
        if not username:
            return None
        return {"username": username, "password": password or "", "serveraddress": self.address}

    @cached_property
    def client(self) -> RegistryClient:
        username, password = self._credentials
        return RegistryClient(self.address, scheme=self.scheme, username=username, password=password,
                              name=self.registry)

    def get_conn(self) -> RegistryClient:
        return self.client
