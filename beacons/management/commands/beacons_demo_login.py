import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the local staff login 'demo' with a fresh random password and print it."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")

    def handle(self, *args, username, **options):
        user, _ = get_user_model().objects.get_or_create(username=username)
        password = secrets.token_urlsafe(9)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        line = "=" * 64
        self.stdout.write(
            f"{line}\n  Beacons is starting at http://127.0.0.1:8000/dashboard/\n"
            f"  Sign in as: {username}   password: {password}\n{line}"
        )
