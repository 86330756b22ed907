"""A batch is never named as if its name were an id: commands and scripts read ``7`` and
``id:7`` as the batch with id 7, so such a name would hide that batch, or be hidden."""

import pytest
from django.urls import reverse

from console.errors import InvalidInput
from customers.models import StagingBatch
from customers.selectors import batch_find
from customers.services import batch_create
from customers.services.batches import ERR_NAME_IS_ID
from tests.factories import BatchFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["7", "id:7", "ID:7", " 7 "])
def test_a_name_that_reads_as_an_id_is_refused(importer, name):
    with pytest.raises(InvalidInput) as raised:
        batch_create(name=name, user=importer)

    assert raised.value.messages == [ERR_NAME_IS_ID % {"name": name.strip()}]
    assert not StagingBatch.objects.exists()


@pytest.mark.parametrize("name", ["7b", "batch-7", "2025-03", "id:", "id:x7", "id-7"])
def test_a_name_with_anything_but_digits_is_a_name(importer, name):
    assert batch_create(name=name, user=importer).name == name


def test_the_admin_refuses_to_create_or_rename_a_batch_to_a_number(client, importer, batch):
    client.force_login(importer)

    added = client.post(
        reverse("admin:customers_stagingbatch_add"), {"name": "2025", "time_zone": "UTC"}
    )
    renamed = client.post(
        reverse("admin:customers_stagingbatch_change", args=[batch.pk]),
        {"name": f"id:{batch.pk}", "time_zone": "UTC"},
    )

    assert added.status_code == renamed.status_code == 200  # the form again, with the error
    assert added.context["adminform"].form.errors["name"] == [ERR_NAME_IS_ID % {"name": "2025"}]
    assert renamed.context["adminform"].form.errors["name"] == [
        ERR_NAME_IS_ID % {"name": f"id:{batch.pk}"}
    ]
    assert list(StagingBatch.objects.values_list("name", flat=True)) == [batch.name]


def test_find_reads_a_number_as_an_id_and_anything_else_as_a_name(importer):
    spring = BatchFactory(name="spring", created_by=importer)
    legacy = BatchFactory(name=str(spring.pk), created_by=importer)  # named before the rule

    assert batch_find(reference=str(spring.pk)) == spring
    assert batch_find(reference=f"id:{spring.pk}") == spring
    assert batch_find(reference=f"id:{legacy.pk}") == legacy
    assert batch_find(reference="spring") == spring
    assert batch_find(reference="id:999999") is None
