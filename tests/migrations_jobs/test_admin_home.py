"""The console home: recent jobs and batches above the app list, and customers sent per
day over the last 30 days drawn as inline SVG."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from customers.models import StagingBatch
from migrations_jobs.models import JobChunk, MigrationJob
from migrations_jobs.selectors import customers_sent_per_day
from migrations_jobs.templatetags.console_jobs import nice_ceiling, sent_chart
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db
INDEX = reverse("admin:index")
JobStatus = MigrationJob.Status


@pytest.fixture
def watcher(db):
    return UserFactory(
        username="watcher",
        perms=["migrations_jobs.view_migrationjob", "customers.view_stagingbatch"],
    )


def job_with_sent_chunks(*, user, name: str, sent: list[tuple[dt.datetime, int]], **fields):
    """A job whose chunks were accepted at the given times, with the given customers."""
    batch = BatchFactory(name=name, created_by=user, status=StagingBatch.Status.SUBMITTED)
    job = MigrationJob.objects.create(
        batch=batch,
        started_by=user,
        total_customers=sum(n for _at, n in sent),
        sent_customers=sum(n for _at, n in sent),
        chunk_count=len(sent),
        started_at=timezone.now() - dt.timedelta(minutes=5),
        **fields,
    )
    JobChunk.objects.bulk_create(
        [
            JobChunk(
                job=job,
                sequence=number,
                status=JobChunk.Status.SENT,
                customer_count=count,
                not_before=at,
                finished_at=at,
            )
            for number, (at, count) in enumerate(sent, start=1)
        ]
    )
    return job


def test_home_shows_recent_jobs_batches_and_the_chart_above_the_apps(client, watcher):
    now = timezone.now()
    job = job_with_sent_chunks(
        user=watcher, name="spring-migration", sent=[(now, 1000), (now, 1340)]
    )
    client.force_login(watcher)

    page = client.get(INDEX).content.decode()

    assert page.index('id="console-home"') < page.index('id="content-main"')
    assert reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk]) in page
    assert "2,340 / 2,340" in page
    assert "console-badge-succeeded" not in page  # the job is still queued
    assert "console-badge-queued" in page
    assert reverse("admin:customers_stagingbatch_change", args=[job.batch_id]) in page
    assert "spring-migration" in page
    assert page.count("<svg") >= 1
    chart = page[
        page.index('<svg class="console-chart"') : page.index(
            "</svg>", page.index('<svg class="console-chart"')
        )
    ]
    assert chart.count('<rect class="console-chart-bar') == 30
    assert "<strong>2,340</strong> customers accepted by Masivo in this period." in page


def test_chart_counts_customers_sent_on_each_of_the_last_30_days(client, watcher):
    now = timezone.now()
    job_with_sent_chunks(
        user=watcher,
        name="b",
        sent=[
            (now, 1000),
            (now, 500),
            (now - dt.timedelta(days=3), 250),
            (now - dt.timedelta(days=29), 7),
            (now - dt.timedelta(days=40), 999),  # older than the chart
        ],
    )
    client.force_login(watcher)

    page = client.get(INDEX).content.decode()

    counts = dict(re.findall(r'data-day="([\d-]+)" data-count="(\d+)"', page))
    today = timezone.localdate()
    assert len(counts) == 30
    assert counts[today.isoformat()] == "1500"
    assert counts[(today - dt.timedelta(days=3)).isoformat()] == "250"
    assert counts[(today - dt.timedelta(days=29)).isoformat()] == "7"
    assert sum(int(n) for n in counts.values()) == 1757


def test_customers_sent_per_day_counts_only_sent_chunks(watcher):
    now = timezone.now()
    job = job_with_sent_chunks(user=watcher, name="c", sent=[(now, 10)])
    JobChunk.objects.create(
        job=job,
        sequence=2,
        status=JobChunk.Status.FAILED,
        customer_count=90,
        not_before=now,
        finished_at=now,
    )

    days = customers_sent_per_day(days=30, now=now)

    assert len(days) == 30
    assert days[-1] == (timezone.localdate(now), 10)
    assert days[0][0] == timezone.localdate(now) - dt.timedelta(days=29)
    assert sum(count for _day, count in days) == 10


def test_chart_scales_to_a_round_maximum():
    today = dt.date(2026, 3, 31)
    days = [(today - dt.timedelta(days=29 - n), 0) for n in range(30)]
    days[-1] = (today, 1340)

    chart = sent_chart(days)

    assert nice_ceiling(1340) == 2000
    assert [tick.label for tick in chart.ticks] == ["0", "1,000", "2,000"]
    assert chart.total == 1340
    tallest = chart.bars[-1]
    assert float(tallest.height) == pytest.approx((chart.height - 10 - 24) * 1340 / 2000, abs=0.1)
    assert all(float(bar.height) == 0 for bar in chart.bars[:-1])


def test_home_hides_jobs_from_who_may_not_see_them(client):
    batch_viewer = UserFactory(username="stager", perms=["customers.view_stagingbatch"])
    job = job_with_sent_chunks(user=batch_viewer, name="secret-job", sent=[(timezone.now(), 5)])
    client.force_login(batch_viewer)

    page = client.get(INDEX).content.decode()

    assert reverse("admin:migrations_jobs_migrationjob_change", args=[job.pk]) not in page
    assert "console-chart" not in page
    assert 'id="console-recent-batches"' in page


def test_home_shows_nothing_of_the_console_to_who_may_see_neither(client):
    client.force_login(UserFactory(username="plain-staff"))

    page = client.get(INDEX).content.decode()

    assert 'id="console-home"' not in page


def test_home_shows_time_left_of_a_running_job(client, watcher, settings):
    settings.MIGRATION_MIN_INTERVAL_S = 5
    settings.MIGRATION_HOURLY_CAP = 0
    job = job_with_sent_chunks(user=watcher, name="running", sent=[], status=JobStatus.RUNNING)
    JobChunk.objects.bulk_create(
        [
            JobChunk(job=job, sequence=n, customer_count=1000, not_before=timezone.now())
            for n in range(1, 25)
        ]
    )
    MigrationJob.objects.filter(pk=job.pk).update(total_customers=24_000)
    client.force_login(watcher)

    page = client.get(INDEX).content.decode()

    assert "about 2 min left" in page  # 24 requests, one every 5 seconds
    assert "0 / 24,000" in page


def test_home_reads_few_queries(client, watcher, django_assert_max_num_queries):
    for number in range(12):
        job_with_sent_chunks(user=watcher, name=f"batch-{number}", sent=[(timezone.now(), 3)])
    client.force_login(watcher)
    client.get(INDEX)

    with django_assert_max_num_queries(12):
        assert client.get(INDEX).status_code == 200


def test_a_phone_gets_a_narrow_chart_whose_last_day_is_not_cut_off(client, watcher):
    job_with_sent_chunks(user=watcher, name="b", sent=[(timezone.now(), 40)])
    client.force_login(watcher)

    page = client.get(INDEX).content.decode()

    assert '<svg class="console-chart" data-shape="wide" viewBox="0 0 720 168"' in page
    assert '<svg class="console-chart" data-shape="narrow" viewBox="0 0 320 180"' in page
    narrow = page[page.index('data-shape="narrow"') :]
    last_label = narrow[: narrow.index("</svg>")].rsplit('<text class="console-chart-label"', 1)[1]
    assert 'x="312.0"' in last_label
    assert 'text-anchor="end"' in last_label
    # Each table scrolls inside itself, and a keyboard can reach it to scroll it.
    assert page.count('class="console-scroll" tabindex="0" role="region" aria-label=') == 2
