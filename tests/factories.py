import datetime as dt
import uuid
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from customers.models import (
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
    StagingBatch,
)
from migrations_jobs.models import JobChunk, MigrationJob

UTC = dt.UTC


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"operator{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def perms(self, create, extracted, **kwargs):
        """``UserFactory(perms=["customers.import_stagingbatch", ...])``."""
        for dotted in extracted or ():
            app_label, codename = dotted.split(".")
            self.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        if create:
            self.save()


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StagingBatch

    name = factory.Sequence(lambda n: f"batch-{n}")
    created_by = factory.SubFactory(UserFactory)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StagedCustomer

    batch = factory.SubFactory(BatchFactory)
    legacy_id = factory.Sequence(lambda n: f"legacy-{n:06d}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    registration_date = dt.datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
    status = "ACTIVE"


class BalanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StagedBalance

    customer = factory.SubFactory(CustomerFactory)
    batch = factory.SelfAttribute("customer.batch")
    reward_id = factory.LazyFunction(uuid.uuid4)
    amount = Decimal("123")


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StagedDevice

    customer = factory.SubFactory(CustomerFactory)
    batch = factory.SelfAttribute("customer.batch")
    device_token = factory.Sequence(lambda n: f"fcm:token-{n}")
    platform = "ios"


class MetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StagedMetric

    customer = factory.SubFactory(CustomerFactory)
    batch = factory.SelfAttribute("customer.batch")
    period = "lifetime"
    spend_total = Decimal("50.20")
    number_of_purchases = 10


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MigrationJob

    batch = factory.SubFactory(BatchFactory, status=StagingBatch.Status.SUBMITTED)
    started_by = factory.SubFactory(UserFactory)


class ChunkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobChunk

    job = factory.SubFactory(JobFactory)
    sequence = factory.Sequence(lambda n: n + 1)
    not_before = factory.LazyFunction(lambda: dt.datetime.now(tz=UTC))
