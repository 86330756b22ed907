"""Create (or reset) the console's administrators for a local run and print their passwords.

``make run`` creates two: ``admin`` stages and submits, ``reviewer`` approves, since a batch
must be approved by someone other than the person who staged it (the four-eyes rule).
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the 'admin' and 'reviewer' superusers, or give them new passwords; print them."

    def add_arguments(self, parser):
        parser.add_argument(
            "usernames", nargs="*", default=["admin", "reviewer"], help="Users to create."
        )

    def handle(self, *args, usernames: list[str], **options):
        for username in usernames:
            password = secrets.token_urlsafe(12)
            user, created = get_user_model().objects.get_or_create(
                username=username,
                defaults={"email": f"{username}@localhost", "is_staff": True, "is_superuser": True},
            )
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            verb = "Created" if created else "Reset the password of"
            self.stdout.write(self.style.SUCCESS(f"{verb} user '{username}'. Password: {password}"))
