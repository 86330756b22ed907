"""A problem is read in the reader's language, whoever validated and in whatever language:
it is stored as its message's template and parameters, with its English to search; a
problem stored before that shows the words it was stored with."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.utils import translation

from customers.contract.messages import ERR_EMAIL
from customers.models import CustomerProblem, StagedTransaction
from customers.services import batch_validate
from tests.factories import BalanceFactory, CustomerFactory

pytestmark = pytest.mark.django_db

EMAIL_EN = "“broken” is not a valid email address."
EMAIL_ES = "“broken” no es una dirección de correo electrónico válida."
POINTS = uuid.UUID("3c90c3cc-0d44-4b50-8888-8dd25736052a")


@pytest.fixture
def broken(batch):
    """A batch with a customer whose email is broken, and a balance of another batch's
    customer."""
    CustomerFactory(batch=batch, legacy_id="c-1", email="broken")
    BalanceFactory(customer=CustomerFactory(legacy_id="c-9"), batch=batch)
    return batch


def validate_in(language: str, batch, user) -> None:
    with translation.override(language):
        batch_validate(batch=batch, user=user)


def shown_in(language: str, problem: CustomerProblem) -> str:
    with translation.override(language):
        return problem.get_message_display()


def test_a_problem_validated_in_english_reads_in_spanish(broken, importer):
    validate_in("en", broken, importer)

    problem = CustomerProblem.objects.get(batch=broken, field="email")
    assert shown_in("es", problem) == EMAIL_ES
    assert shown_in("en", problem) == EMAIL_EN


def test_a_problem_validated_in_spanish_reads_in_english_and_keeps_its_english(broken, importer):
    validate_in("es", broken, importer)

    problem = CustomerProblem.objects.get(batch=broken, field="email")
    assert shown_in("en", problem) == EMAIL_EN
    assert shown_in("es", problem) == EMAIL_ES
    assert problem.message == EMAIL_EN
    assert (problem.message_template, problem.message_params) == (
        "“%(value)s” is not a valid email address.",
        {"value": "broken"},
    )
    assert problem.message_template == str(ERR_EMAIL)


def test_a_word_inside_a_problem_reads_in_the_readers_language_too(broken, importer):
    validate_in("en", broken, importer)

    problem = CustomerProblem.objects.get(batch=broken, legacy_id="c-9")
    assert shown_in("en", problem).startswith("This balance is staged in this batch")
    assert shown_in("es", problem).startswith("Este registro de saldo está preparado")


def test_a_history_problem_reads_in_spanish_with_its_file_and_its_rule(batch, importer):
    ann = CustomerFactory(batch=batch, legacy_id="000001")
    BalanceFactory(customer=ann, reward_id=POINTS, amount=Decimal("10"))
    StagedTransaction.objects.create(
        batch=batch,
        customer=ann,
        customer_legacy_id="000001",
        reward_id=POINTS,
        amount=Decimal("10"),
        type="",
        issued_at=dt.datetime(2023, 1, 2, tzinfo=dt.UTC),
        source_row=4,
    )
    validate_in("en", batch, importer)

    problem = CustomerProblem.objects.get(batch=batch, field="transactions.type")
    assert shown_in("es", problem) == (
        "Fila 4 del archivo de transacciones: Obligatorio: Masivo rechaza una entrada que no "
        "lo incluya."
    )
    assert problem.message.startswith("Row 4 of the transactions file: Required: ")


def test_a_problem_stored_before_templates_shows_the_words_it_was_stored_with(broken):
    problem = CustomerProblem.objects.create(
        batch=broken,
        legacy_id="c-1",
        field="email",
        code=CustomerProblem.Code.INVALID,
        message="“broken” no es una dirección válida.",
    )

    assert shown_in("en", problem) == "“broken” no es una dirección válida."
    assert str(problem) == "c-1.email: “broken” no es una dirección válida."
