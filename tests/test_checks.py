"""Start-up checks: email settings that cannot deliver stop the start with a clear message."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

ROOT = Path(__file__).resolve().parent.parent
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


def error_ids() -> list[str]:
    return [message.id for message in checks.run_checks() if message.level >= checks.ERROR]


def test_file_email_backend_without_a_folder_is_a_start_up_error(settings):
    settings.EMAIL_BACKEND = FILE_BACKEND
    settings.EMAIL_FILE_PATH = None
    assert error_ids() == ["beacons.E002"]


def test_file_email_backend_with_a_folder_passes(settings, tmp_path):
    settings.EMAIL_BACKEND = FILE_BACKEND
    settings.EMAIL_FILE_PATH = str(tmp_path)
    assert error_ids() == []


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [("EMAIL_BACKEND", "no.such.Backend", ["beacons.E001"]), ("EMAIL_USE_SSL", True, ["beacons.E003"])],
)
def test_email_backend_that_cannot_work_is_a_start_up_error(settings, setting, value, expected):
    settings.EMAIL_USE_TLS = True
    setattr(settings, setting, value)
    assert error_ids() == expected


@pytest.mark.parametrize(("gap", "expected"), [(0, ["beacons.E004"]), (-5, ["beacons.E004"]), (1, []), (1800, [])])
def test_a_visit_gap_under_a_second_is_a_start_up_error(settings, gap, expected):
    settings.BEACONS_VISIT_GAP_SECONDS = gap
    assert error_ids() == expected


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("EMAIL_")}
    environment.update(DJANGO_SETTINGS_MODULE="beacon_site.settings", **env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_email_settings_come_from_the_environment(tmp_path):
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_FILE_PATH, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, "
        "s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.DEFAULT_FROM_EMAIL, s.SERVER_EMAIL)"
    )
    done = run(
        "-c",
        code,
        EMAIL_BACKEND=FILE_BACKEND,
        EMAIL_HOST="smtp.shop.example",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD="s3cret",
        EMAIL_USE_TLS="true",
        EMAIL_USE_SSL="",
        DEFAULT_FROM_EMAIL="beacons@shop.example",
        SERVER_EMAIL="errors@shop.example",
    )
    assert done.stdout.split() == [
        FILE_BACKEND,
        "None",
        "smtp.shop.example",
        "587",
        "mailer",
        "s3cret",
        "True",
        "False",
        "beacons@shop.example",
        "errors@shop.example",
    ]
    done = run(
        "-c",
        "import django; django.setup(); from django.conf import settings as s; print(s.EMAIL_FILE_PATH)",
        EMAIL_FILE_PATH=str(tmp_path),
    )
    assert done.stdout.strip() == str(tmp_path)


@pytest.mark.parametrize("command", [["manage.py", "check"], ["-m", "beacon_site.serve"]])
def test_server_start_stops_on_the_file_backend_without_a_folder(command):
    done = run(*command, EMAIL_BACKEND=FILE_BACKEND, PORT="1")  # port 1: it must stop before binding
    assert done.returncode == 1
    assert "(beacons.E002) EMAIL_BACKEND is the file backend but EMAIL_FILE_PATH is not set." in done.stderr
    assert "Traceback" not in done.stderr
