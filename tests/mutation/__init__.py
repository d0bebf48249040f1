import functools
import sys

PROJECT = ("beacons", "dashboard", "beacon_site", "tests")


def project_caches_clear() -> None:
    """Clear every lru_cache of the project's modules (a cached answer must not stand in for a run)."""
    for module in [m for n, m in list(sys.modules.items()) if n.split(".")[0] in PROJECT and m is not None]:
        for value in list(vars(module).values()):
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()
