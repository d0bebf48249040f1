"""Settings from the environment: production security settings, the SECRET_KEY guard, the
Redis persistence check."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

from beacons.checks import PERSISTENCE_OFF, redis_persistence_check

from .redis_private import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``manage.py`` outside pytest (no PYTEST_VERSION) with only ``env`` set among the settings."""
    base = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def documented_production_environment() -> dict[str, str]:
    """The variables of the README's production block."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n# production environment\n(.*?)```", readme, re.S)
    assert block, "README has no production environment block"
    pairs = re.findall(r"^export (\w+)=(\S+)", block.group(1), re.M)
    return {name: value.strip("'\"") for name, value in pairs}


def test_the_development_key_with_debug_off_refuses_to_start(tmp_path):
    result = manage("check", env={"SECRET_KEY_FILE": str(tmp_path / "none")})
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


@pytest.mark.parametrize("source", ["environment", "local file", "debug"])
def test_a_key_from_the_environment_or_the_local_file_or_debug_starts(tmp_path, source):
    key_file = tmp_path / ".secret-key"
    env = {"SECRET_KEY_FILE": str(key_file)}
    if source == "environment":
        env["SECRET_KEY"] = "x" * 60
    elif source == "local file":
        key_file.write_text("y" * 60 + "\n")
    else:
        env["DEBUG"] = "1"
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    "workers,options",
    [(None, "-c max_parallel_workers_per_gather=0"), ("2", "-c max_parallel_workers_per_gather=2"), ("-1", None)],
)
def test_postgresql_connections_plan_no_parallel_workers_unless_told(workers, options):
    env = {"DEBUG": "1", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}
    if workers is not None:
        env["DATABASE_PARALLEL_WORKERS"] = workers
    code = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'].get('options'))"
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(options)  # after the shell's imports line


def test_make_run_writes_a_random_local_key_once_and_git_ignores_it(tmp_path):
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: \.secret-key migrate$", makefile, re.M)
    target = tmp_path / ".secret-key"
    subprocess.run(
        ["make", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), ".secret-key"], check=True, capture_output=True
    )
    first = target.read_text()
    subprocess.run(
        ["make", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), ".secret-key"], check=True, capture_output=True
    )
    assert target.read_text() == first and len(first.strip()) >= 50
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".secret-key"], cwd=ROOT, check=False)
    assert ignored.returncode == 0


def test_check_deploy_is_clean_with_the_documented_production_environment(tmp_path):
    env = documented_production_environment()
    assert env["SESSION_COOKIE_SECURE"] == "true" and int(env["SECURE_HSTS_SECONDS"]) >= 31536000
    env["SECRET_KEY"] = "production-" + "k" * 60  # the README says: a long random value
    env["SECRET_KEY_FILE"] = str(tmp_path / "none")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_without_the_production_environment_check_deploy_names_what_is_missing(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={"SECRET_KEY": "z" * 60, "SECRET_KEY_FILE": "-"}
    )
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


# --- Redis persistence ---------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path, request):
    server = PrivateRedis(tmp_path, *request.param).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("private_redis", "warned"),
    [
        (("--appendonly", "no", "--save", ""), True),
        (("--appendonly", "yes", "--appendfsync", "everysec"), False),
        (("--appendonly", "no", "--save", "", "--rename-command", "CONFIG", ""), True),  # CONFIG disabled: INFO says
        (("--appendonly", "yes", "--rename-command", "CONFIG", ""), False),
    ],
    indirect=["private_redis"],
)
def test_the_redis_sink_on_a_redis_without_persistence_warns_at_start_up(settings, private_redis, warned):
    settings.BEACONS_SINK = "redis"
    settings.BEACONS_REDIS_URL = private_redis.url

    found = [message.id for message in checks.run_checks() if message.id == PERSISTENCE_OFF]

    assert found == ([PERSISTENCE_OFF] if warned else [])


def test_no_persistence_warning_for_other_sinks_or_an_unreachable_redis(settings):
    settings.BEACONS_SINK = "direct"
    assert redis_persistence_check() == []
    settings.BEACONS_SINK = "redis"
    settings.BEACONS_REDIS_URL = "redis://127.0.0.1:1/0"
    assert redis_persistence_check() == []


def test_the_shipped_production_redis_config_turns_persistence_on(tmp_path, settings):
    config = (ROOT / "beacon_site" / "redis-production.conf").read_text()
    assert re.search(r"^appendonly yes$", config, re.M) and re.search(r"^appendfsync everysec$", config, re.M)
    local = tmp_path / "redis.conf"
    local.write_text(re.sub(r"^(dir|port|bind) .*$", "", config, flags=re.M))  # the test's own port and folder
    shipped = PrivateRedis(tmp_path, str(local)).start()
    try:
        settings.BEACONS_SINK, settings.BEACONS_REDIS_URL = "redis", shipped.url
        assert redis_persistence_check() == []
    finally:
        shipped.stop()
