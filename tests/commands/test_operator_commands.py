"""The accounts of the two people a migration needs, and the local administrators."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_a_stager_and_a_reviewer_get_their_roles_permissions():
    out = run("operator_create", "ana", "--role", "stager")
    run("operator_create", "ben", "--role", "reviewer", "--password", "pw-ben")

    ana, ben = (get_user_model().objects.get(username=n) for n in ("ana", "ben"))
    assert "Password: " in out
    assert ana.is_staff
    assert not ana.is_superuser
    assert ana.has_perm("customers.import_stagingbatch")
    assert not ana.has_perm("customers.approve_stagingbatch")
    assert ben.has_perm("customers.approve_stagingbatch")
    assert ben.has_perm("migrations_jobs.retry_migrationjob")
    assert not ben.has_perm("customers.import_stagingbatch")
    assert ben.check_password("pw-ben")


def test_running_it_again_keeps_the_password():
    run("operator_create", "ana", "--role", "stager", "--password", "first")

    out = run("operator_create", "ana", "--role", "stager")

    assert "password unchanged" in out
    assert get_user_model().objects.get(username="ana").check_password("first")


def test_make_run_keeps_the_administrators_passwords_unless_asked():
    first = run("console_admin", "admin")
    password = first.split("Password: ")[1].strip()

    again = run("console_admin", "admin")
    assert "password is unchanged" in again
    assert get_user_model().objects.get(username="admin").check_password(password)

    reset = run("console_admin", "admin", "--reset-passwords")
    assert "Reset the password of user 'admin'" in reset
