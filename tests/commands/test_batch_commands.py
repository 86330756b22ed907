import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.utils import translation

from customers.management.arguments import (
    ERR_UNKNOWN_BATCH,
    ERR_UNKNOWN_USER,
    ERR_USER_PERMISSION,
)
from customers.management.commands.stage_file import ERR_NO_FILE
from customers.models import Outcome, StagedCustomer, StagingBatch
from customers.services import ERR_APPROVE_OWN_BATCH
from tests.factories import BatchFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = StagingBatch.Status
SAMPLES = {
    "customers": "customers.csv",
    "balances": "balances.csv",
    "devices": "devices.csv",
    "metrics": "metrics.csv",
}


def run(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def stage_samples(samples, batch_name: str, user: str) -> None:
    for kind, name in SAMPLES.items():
        run("stage_file", batch_name, kind, str(samples / name), "--user", user)


@pytest.fixture
def staged(importer, samples) -> StagingBatch:
    stage_samples(samples, "spring-migration", importer.username)
    return StagingBatch.objects.get(name="spring-migration")


@pytest.fixture
def validated(staged) -> StagingBatch:
    run("batch_validate", staged.name, "--user", "importer")
    staged.refresh_from_db()
    assert staged.status == Status.VALIDATED
    return staged


# --- stage_file -------------------------------------------------------------------------------
def test_stage_file_creates_the_batch_and_prints_the_counts(importer, samples):
    out, _err = run(
        "stage_file", "autumn", "customers", str(samples / "customers.csv"), "--user", "importer"
    )

    batch = StagingBatch.objects.get(name="autumn")
    assert (batch.created_by, batch.last_imported_by) == (importer, importer)
    assert batch.customer_count == 12
    assert f"Created batch “autumn” (id {batch.pk})." in out
    assert f"Staged 12 customers from customers.csv into batch “autumn” (id {batch.pk})." in out


def test_stage_file_finds_the_batch_by_id(importer, batch, samples):
    run(
        "stage_file",
        str(batch.pk),
        "customers",
        str(samples / "customers.csv"),
        "--user",
        "importer",
    )
    assert StagingBatch.objects.count() == 1
    assert StagedCustomer.objects.filter(batch=batch).count() == 12


def test_stage_file_stages_a_nested_document(importer, samples):
    out, _err = run("stage_file", "n", "nested", str(samples / "nested.json"), "--user", "importer")
    assert "Staged 12 customers, 17 balances, 7 devices, 17 metrics from nested.json" in out


def test_bad_file_prints_every_problem_and_stages_nothing(importer, batch, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "id,name,email,registration_date\n"
        "a-1,Ann,ann@example.com,yesterday\n"
        "a-2,Bob,bob@example.com,someday\n"
    )
    err = StringIO()

    with pytest.raises(CommandError, match=r"bad.csv has 2 problem\(s\); nothing was staged"):
        call_command("stage_file", batch.name, "customers", str(bad), user="importer", stderr=err)

    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("bad.csv: row 2 (id “a-1”), column “registration_date”")
    assert lines[1].startswith("bad.csv: row 3 (id “a-2”), column “registration_date”")
    assert not StagedCustomer.objects.exists()


def test_a_batch_created_for_a_refused_file_is_not_kept(importer, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,email,registration_date\na-1,Ann,ann@example.com,yesterday\n")
    out = StringIO()

    with pytest.raises(CommandError, match="nothing was staged"):
        call_command(
            "stage_file", "new", "customers", str(bad), user="importer",
            stdout=out, stderr=StringIO(),
        )  # fmt: skip

    assert not StagingBatch.objects.exists()
    assert "Created batch" not in out.getvalue()


def test_stage_file_dry_run_stages_nothing(importer, batch, samples):
    out, _err = run(
        "stage_file", batch.name, "customers", str(samples / "customers.csv"),
        "--user", "importer", "--dry-run",
    )  # fmt: skip
    assert "Checked: would stage 12 customers" in out
    assert not StagedCustomer.objects.exists()


def test_stage_file_refuses_an_unknown_user(batch, samples):
    with pytest.raises(CommandError, match=ERR_UNKNOWN_USER.format(user="ghost")):
        run(
            "stage_file", batch.name, "customers", str(samples / "customers.csv"), "--user", "ghost"
        )


def test_stage_file_needs_the_import_permission(approver, samples):
    expected = ERR_USER_PERMISSION.format(
        user="approver", permission="customers.import_stagingbatch"
    )
    with pytest.raises(CommandError, match=expected):
        run("stage_file", "x", "customers", str(samples / "customers.csv"), "--user", "approver")
    assert not StagingBatch.objects.exists()


def test_stage_file_refuses_a_missing_file_and_an_unknown_kind(importer, batch, tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(CommandError, match=ERR_NO_FILE.format(path=missing)):
        run("stage_file", batch.name, "customers", str(missing), "--user", "importer")
    with pytest.raises(CommandError, match="invalid choice: 'pets'"):
        run("stage_file", batch.name, "pets", str(missing), "--user", "importer")


def test_stage_file_refuses_a_file_over_the_size_limit(importer, batch, samples, settings):
    settings.MIGRATION_UPLOAD_MAX_BYTES = 10
    with pytest.raises(CommandError, match="; files up to 10\xa0bytes can be staged."):
        run(
            "stage_file",
            batch.name,
            "customers",
            str(samples / "customers.csv"),
            "--user",
            "importer",
        )
    assert not StagedCustomer.objects.exists()


def test_stage_file_into_an_approved_batch_is_refused(importer, samples):
    frozen = BatchFactory(name="frozen", created_by=importer, status=Status.APPROVED)
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was staged"):
        call_command(
            "stage_file", frozen.name, "customers", str(samples / "customers.csv"),
            user="importer", stderr=err,
        )  # fmt: skip
    assert "Reopen it first" in err.getvalue()


# --- batch_validate -------------------------------------------------------------------------
def test_validate_prints_the_summary(staged):
    out, _err = run("batch_validate", staged.name, "--user", "importer")

    assert "12 valid, 0 invalid, 0 excluded customer(s); 0 problem(s)." in out
    assert "Batch “spring-migration” is validated." in out
    staged.refresh_from_db()
    assert staged.validated_by.username == "importer"


def test_validate_with_problems_lists_them_and_fails(staged):
    StagedCustomer.objects.filter(batch=staged, legacy_id="000777").update(email="nope")
    err = StringIO()

    with pytest.raises(CommandError, match="is not validated: 1 customer"):
        call_command(
            "batch_validate", str(staged.pk), user="importer", stdout=StringIO(), stderr=err
        )

    assert err.getvalue().startswith("000777 email: ")


def test_validate_lists_the_problems_in_the_active_language(staged):
    StagedCustomer.objects.filter(batch=staged, legacy_id="000777").update(email="nope")
    err = StringIO()

    with translation.override("es"), pytest.raises(CommandError):
        call_command(
            "batch_validate", str(staged.pk), user="importer", stdout=StringIO(), stderr=err
        )

    assert err.getvalue().startswith(
        "000777 email: “nope” no es una dirección de correo electrónico válida."
    )
    assert staged.problems.get().message == "“nope” is not a valid email address."


def test_validate_of_a_batch_whose_customers_were_all_sent_says_which_batch_sent_them(importer):
    earlier = BatchFactory(name="winter-migration", status=Status.SUBMITTED)
    again = BatchFactory(name="spring-again", created_by=importer)
    for legacy_id in ("c-1", "c-2"):
        CustomerFactory(batch=earlier, legacy_id=legacy_id, outcome=Outcome.SENT)
        CustomerFactory(batch=again, legacy_id=legacy_id)

    with pytest.raises(CommandError) as raised:
        run("batch_validate", again.name, "--user", "importer")

    message = str(raised.value)
    assert message.startswith("Batch “spring-again” is not validated. Nothing is left to send")
    assert "already sent to Masivo by batch “winter-migration”" in message
    assert "invalid" not in message


def test_validate_of_a_submitted_batch_does_not_say_reopen_it(importer):
    sent = BatchFactory(name="sent", created_by=importer, status=Status.SUBMITTED)

    with pytest.raises(CommandError, match="cannot be reopened") as raised:
        run("batch_validate", sent.name, "--user", "importer")

    assert "Reopen it first" not in str(raised.value)


def test_validate_refuses_an_unknown_batch(importer):
    with pytest.raises(CommandError, match=ERR_UNKNOWN_BATCH.format(batch="nope")):
        run("batch_validate", "nope", "--user", "importer")


def test_validate_of_an_approved_batch_is_refused(importer):
    frozen = BatchFactory(name="frozen", created_by=importer, status=Status.APPROVED)
    with pytest.raises(CommandError, match="only a draft or validated batch can be validated"):
        run("batch_validate", frozen.name, "--user", "importer")


def test_validate_needs_the_change_permission_of_the_named_user(approver, staged):
    with pytest.raises(CommandError, match="customers.change_stagingbatch"):
        run("batch_validate", staged.name, "--user", "approver")


# --- batch_approve ---------------------------------------------------------------------------
def test_second_person_approves(approver, validated):
    out, _err = run("batch_approve", validated.name, "--user", "approver")

    validated.refresh_from_db()
    assert (validated.status, validated.approved_by) == (Status.APPROVED, approver)
    assert "Batch “spring-migration” is approved by approver" in out


def test_approval_by_the_stager_is_refused_by_the_four_eyes_rule(importer, validated):
    importer.user_permissions.add(Permission.objects.get(codename="approve_stagingbatch"))
    with pytest.raises(CommandError, match=ERR_APPROVE_OWN_BATCH % {"batch": validated.name}):
        run("batch_approve", validated.name, "--user", "importer")
    validated.refresh_from_db()
    assert validated.status == Status.VALIDATED


def test_approval_needs_the_approve_permission(validated):
    UserFactory(username="clerk")
    with pytest.raises(CommandError, match="customers.approve_stagingbatch"):
        run("batch_approve", validated.name, "--user", "clerk")


def test_approving_a_draft_is_refused(approver, staged):
    with pytest.raises(CommandError, match="only a validated batch can be approved"):
        run("batch_approve", staged.name, "--user", "approver")


def test_approve_needs_the_user_option(validated):
    with pytest.raises(CommandError, match="--user"):
        run("batch_approve", validated.name)


# --- batch_dry_run ---------------------------------------------------------------------------
def test_dry_run_writes_every_request_body(validated, tmp_path):
    target = tmp_path / "out.jsonl"

    out, _err = run("batch_dry_run", validated.name, str(target), "--user", "importer")

    bodies = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(bodies) == 1
    assert len(bodies[0]["customers"]) == 12
    assert f"Wrote 1 request body (12 customers) for batch “spring-migration” to {target}." in out
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_dry_run_splits_bodies_by_chunk_size(validated, tmp_path, settings):
    settings.MIGRATION_CHUNK_SIZE = 5
    target = tmp_path / "out.jsonl"
    run("batch_dry_run", validated.name, str(target), "--user", "importer")
    sizes = [len(json.loads(line)["customers"]) for line in target.read_text().splitlines()]
    assert sizes == [5, 5, 2]


def test_dry_run_to_standard_output(validated):
    out, _err = run("batch_dry_run", validated.name, "-", "--user", "importer")
    assert len(json.loads(out)["customers"]) == 12


def test_dry_run_of_a_draft_is_refused(importer, tmp_path):
    draft = BatchFactory(name="draft", created_by=importer)
    CustomerFactory(batch=draft)
    with pytest.raises(CommandError, match="validate it before asking for its dry run"):
        run("batch_dry_run", draft.name, str(tmp_path / "x.jsonl"), "--user", "importer")
    assert not (tmp_path / "x.jsonl").exists()


def test_dry_run_reports_a_path_it_cannot_write(validated, tmp_path):
    with pytest.raises(CommandError, match="Cannot write"):
        run(
            "batch_dry_run",
            validated.name,
            str(tmp_path / "no" / "such" / "dir.jsonl"),
            "--user",
            "importer",
        )
