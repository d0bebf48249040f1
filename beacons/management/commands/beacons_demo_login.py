"""The local staff login ``make run`` prints: created once, then the same one every run.

The password is kept in a git-ignored file next to the SQLite database (``.demo-login``,
readable by its owner only), because printing it again means storing it: a password derived
from SECRET_KEY would be guessable on every install that keeps the default key.
"""

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from beacons.management.base import BeaconsCommand, whole_number

LOGIN_FILE_NAME = ".demo-login"


def login_file_default() -> Path:
    return Path(settings.BASE_DIR) / LOGIN_FILE_NAME


def login_read(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def login_write(path: Path, *, username: str, password: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"username": username, "password": password}, file)
    os.chmod(path, 0o600)  # also when the file was there before with wider rights


class Command(BeaconsCommand):
    help = (
        "Print the local staff login 'demo' (a superuser), creating it with a random password on the "
        "first run; later runs print the same login. --reset makes a new password."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--reset", action="store_true", help="give the login a new random password")
        parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1", help="for the banner only")
        parser.add_argument(
            "--port", type=whole_number(1), default=os.environ.get("PORT") or 8000, help="for the banner only"
        )
        parser.add_argument(
            "--file",
            type=Path,
            default=None,
            help=f"where the password is kept (default: {LOGIN_FILE_NAME} in the project)",
        )

    def handle(self, *args, username, reset, host, port, file, **options):
        path = file or login_file_default()
        stored = login_read(path)
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(username=username)
            password = stored.get("password") if stored.get("username") == username else None
            keep = not reset and not created and isinstance(password, str) and user.check_password(password)
            if not keep:
                password = secrets.token_urlsafe(9)
                user.set_password(password)
            user.is_staff = user.is_superuser = user.is_active = True
            # Error alerts fall back to superusers' addresses: with the default console backend the
            # demo's alerts then show in the terminal instead of going nowhere.
            user.email = user.email or f"{username}@localhost"
            user.save()
        if not keep:
            login_write(path, username=username, password=password)
        line = "=" * 64
        note = "new password" if not keep else "same as last time; --reset for a new one"
        self.stdout.write(
            f"{line}\n  Beacons is starting at http://{host}:{port}/dashboard/\n"
            f"  Sign in as: {username}   password: {password}   ({note})\n{line}"
        )
