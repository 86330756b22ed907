"""Create the console's administrators for a local run and print their passwords.

``make run`` creates two: ``admin`` stages and submits, ``reviewer`` approves, since a batch
must be approved by someone other than the person who staged it (the four-eyes rule). A
user that exists keeps its password (``make run`` says so each time); ``--reset-passwords``
gives them new ones.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the 'admin' and 'reviewer' superusers and print their passwords."

    def add_arguments(self, parser):
        parser.add_argument(
            "usernames", nargs="*", default=["admin", "reviewer"], help="Users to create."
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Give existing users a new password too (printed).",
        )

    def handle(self, *args, usernames: list[str], reset_passwords: bool, **options):
        for username in usernames:
            user, created = get_user_model().objects.get_or_create(
                username=username,
                defaults={"email": f"{username}@localhost", "is_staff": True, "is_superuser": True},
            )
            user.is_staff = user.is_superuser = True
            if not (created or reset_passwords):
                user.save()
                self.stdout.write(
                    f"User '{username}' exists; its password is unchanged "
                    "(make run ARGS=--reset-passwords, or manage.py console_admin "
                    "--reset-passwords, prints new ones)."
                )
                continue
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            verb = "Created" if created else "Reset the password of"
            self.stdout.write(self.style.SUCCESS(f"{verb} user '{username}'. Password: {password}"))
