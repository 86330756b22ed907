"""``manage.py operator_create USERNAME --role stager|reviewer [--password PW]``: an
operator account with the permissions of one of the two people a migration needs.

The *stager* creates batches, imports and maps files, validates, fixes and excludes; the
*reviewer* approves (never a batch they staged: the four-eyes rule), submits, and watches,
cancels, retries and resumes jobs. Each role is a group of that name, created or brought up
to date here; running the command again for a user adds the role, keeps the password unless
one is given, and says so.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

ROLES: dict[str, tuple[str, ...]] = {
    "stager": (
        "add_stagingbatch", "change_stagingbatch", "view_stagingbatch", "import_stagingbatch",
        "view_stagedcustomer", "change_stagedcustomer", "view_customerproblem",
        "add_mappingprofile", "change_mappingprofile", "view_mappingprofile",
        "view_migrationjob",
    ),
    "reviewer": (
        "view_stagingbatch", "approve_stagingbatch", "submit_stagingbatch",
        "view_stagedcustomer", "view_customerproblem", "view_mappingprofile",
        "view_migrationjob", "cancel_migrationjob", "retry_migrationjob", "view_sendagain",
    ),
}  # fmt: skip
GROUP_NAMES = {"stager": "Stagers", "reviewer": "Reviewers"}
ERR_MISSING = "These permissions do not exist (are the migrations applied?): {codenames}."


def role_group(role: str) -> Group:
    """The role's group, holding exactly the role's permissions."""
    group, _created = Group.objects.get_or_create(name=GROUP_NAMES[role])
    permissions = Permission.objects.filter(codename__in=ROLES[role])
    missing = set(ROLES[role]) - set(permissions.values_list("codename", flat=True))
    if missing:
        raise CommandError(ERR_MISSING.format(codenames=", ".join(sorted(missing))))
    group.permissions.set(permissions)
    return group


class Command(BaseCommand):
    help = "Create an operator (stager or reviewer) with the permissions of that role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=sorted(ROLES), required=True)
        parser.add_argument("--email", default="", help="Where job outcomes are emailed.")
        parser.add_argument(
            "--password", help="Default: a new random one for a new user, printed once."
        )

    def handle(self, *args, username: str, role: str, email: str, password: str | None, **options):
        group = role_group(role)
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": email, "is_staff": True}
        )
        user.is_staff = True
        if email:
            user.email = email
        chosen = password or (secrets.token_urlsafe(12) if created else None)
        if chosen:
            user.set_password(chosen)
        user.save()
        user.groups.add(group)
        if created:
            self.stdout.write(
                self.style.SUCCESS(f"Created {role} '{username}'. Password: {chosen}")
            )
        else:
            note = "password changed" if chosen else "password unchanged"
            self.stdout.write(self.style.SUCCESS(f"'{username}' is a {role} ({note})."))
