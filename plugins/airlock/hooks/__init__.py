from airlock.hooks.registry import RegistryHook
from airlock.hooks.zone import ZoneDockerHook

__all__ = ["RegistryHook", "ZoneDockerHook"]
