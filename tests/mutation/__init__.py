import functools
import sys

PROJECT = ("beacons", "dashboard", "beacon_site", "tests")
_caches: list[functools._lru_cache_wrapper] = []
_modules_seen = 0  # len(sys.modules) when ``_caches`` was listed


def project_caches_clear() -> None:
    """Clear every lru_cache of the project's modules (a cached answer must not stand in for a run).
    The caches are listed again only when modules were imported since: the trace calls this
    before each of ~2,500 tests, and scanning every module each time cost minutes."""
    global _modules_seen
    if len(sys.modules) != _modules_seen:
        _modules_seen = len(sys.modules)
        modules = [m for n, m in list(sys.modules.items()) if n.split(".")[0] in PROJECT and m is not None]
        _caches[:] = [v for m in modules for v in list(vars(m).values()) if isinstance(v, functools._lru_cache_wrapper)]
    for cache in _caches:
        cache.cache_clear()
