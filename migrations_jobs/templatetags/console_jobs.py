"""How the console shows jobs: numbers, durations, status badges, progress bars, and the
console home (recent jobs and batches, customers sent per day).

Only ``templates/admin/index.html`` and this app's templates load these tags; the
customers app's templates never depend on them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import template
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from migrations_jobs.models import MigrationJob
from migrations_jobs.selectors import (
    customers_sent_per_day,
    job_duration_s,
    job_eta_s,
    job_history,
    jobs_active_count,
    recent_batches,
)

register = template.Library()

VIEW_JOB = "migrations_jobs.view_migrationjob"
VIEW_BATCH = "customers.view_stagingbatch"
CHANGE_BATCH = "customers.change_stagingbatch"
RECENT_JOBS = 8
RECENT_BATCHES = 6
CHART_DAYS = 30


# --- numbers and durations ---------------------------------------------------------------------


@register.filter
def grouped(value) -> str:
    """A whole number with the language's thousands separator: 2,340 (2.340 in Spanish)."""
    if value is None or value == "":
        return ""
    return number_format(value, force_grouping=True)


def _amount(n: int, unit: str, *, short: bool) -> str:
    if short:
        text = {"s": _("%(n)d s"), "min": _("%(n)d min"), "h": _("%(n)d h"), "d": _("%(n)d d")}
    else:
        text = {
            "s": ngettext("%(n)d second", "%(n)d seconds", n),
            "min": ngettext("%(n)d minute", "%(n)d minutes", n),
            "h": ngettext("%(n)d hour", "%(n)d hours", n),
            "d": ngettext("%(n)d day", "%(n)d days", n),
        }
    return text[unit] % {"n": n}


@register.filter(name="duration")
def duration_text(seconds: float | None, short: bool = False) -> str:
    """A duration as an operator reads it: "15 seconds", "4 minutes", "1 hour 4 minutes";
    with ``short``, for tables: "15 s", "4 min", "1 h 4 min"."""
    if seconds is None or seconds == "":
        return ""
    total = max(0, round(float(seconds)))
    if total < 90:
        return _amount(total, "s", short=short)
    minutes = round(total / 60)
    if minutes < 60:
        return _amount(minutes, "min", short=short)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        parts = [_amount(hours, "h", short=short)]
        if minutes:
            parts.append(_amount(minutes, "min", short=short))
        return " ".join(parts)
    days, hours = divmod(hours, 24)
    parts = [_amount(days, "d", short=short)]
    if hours:
        parts.append(_amount(hours, "h", short=short))
    return " ".join(parts)


@register.filter(name="short_duration")
def short_duration_text(seconds: float | None) -> str:
    return duration_text(seconds, short=True)


def eta_text(seconds: float | None, short: bool = False) -> str:
    """Time left, or an honest "unknown"."""
    if seconds is None:
        return _("unknown")
    if seconds < 1:
        return _("a moment")
    return _("about %(duration)s") % {"duration": duration_text(seconds, short=short)}


# --- badges and bars -----------------------------------------------------------------------


@register.simple_tag
def status_badge(status: str, label) -> SafeString:
    """A coloured label for a job's, chunk's, batch's or attempt's status."""
    return format_html('<span class="console-badge console-badge-{}">{}</span>', status, label)


def bar_widths(*, sent: int, failed: int, total: int, skipped: int = 0) -> dict[str, str]:
    """CSS widths of a progress bar's parts (sent, skipped, failed), as "12.34%"."""
    if total <= 0:
        return {"sent": "0%", "skipped": "0%", "failed": "0%"}
    left = 100.0
    widths = {}
    for part, count in (("sent", sent), ("skipped", skipped), ("failed", failed)):
        width = min(left, 100.0 * count / total)
        widths[part] = f"{width:.2f}%"
        left -= width
    return widths


def job_progress_bar(job) -> SafeString:
    """``progress_bar`` of a job's counts."""
    return progress_bar(
        job.sent_customers, job.failed_customers, job.total_customers, job.skipped_customers
    )


@register.simple_tag
def progress_bar(sent: int, failed: int, total: int, skipped: int = 0) -> SafeString:
    """A bar with the sent part in green, the skipped part in grey and the failed part in
    red, and its numbers (customers with an outcome, of all)."""
    widths = bar_widths(sent=sent, failed=failed, total=total, skipped=skipped)
    if skipped:
        title = _("%(sent)s sent, %(skipped)s skipped, %(failed)s failed of %(total)s") % {
            "sent": grouped(sent),
            "skipped": grouped(skipped),
            "failed": grouped(failed),
            "total": grouped(total),
        }
    else:
        title = _("%(sent)s sent, %(failed)s failed of %(total)s") % {
            "sent": grouped(sent),
            "failed": grouped(failed),
            "total": grouped(total),
        }
    return format_html(
        '<span class="console-progress" title="{title}">'
        '<span class="console-bar" role="progressbar" aria-valuemin="0" aria-valuemax="{total}" '
        'aria-valuenow="{done}" aria-label="{title}">'
        '<span class="console-bar-sent" style="width: {sent_width}"></span>'
        '<span class="console-bar-skipped" style="width: {skipped_width}"></span>'
        '<span class="console-bar-failed" style="width: {failed_width}"></span></span>'
        '<span class="console-progress-text">{done_text} / {total_text}</span></span>',
        title=title,
        total=total,
        done=sent + skipped + failed,
        sent_width=widths["sent"],
        skipped_width=widths["skipped"],
        failed_width=widths["failed"],
        done_text=grouped(sent + skipped) if skipped else grouped(sent),
        total_text=grouped(total),
    )


# --- customers sent per day ----------------------------------------------------------------


@dataclass(frozen=True)
class ChartBar:
    day: dt.date
    count: int
    x: str
    y: str
    width: str
    height: str


@dataclass(frozen=True)
class ChartTick:
    label: str
    y: str


@dataclass(frozen=True)
class ChartLabel:
    day: dt.date
    x: str
    # "middle", or "end" for the label at the right edge (so it is not cut off).
    anchor: str = "middle"


@dataclass(frozen=True)
class ChartShape:
    """A drawing's size and margins, in the SVG's own units (1 unit = 1 px when the
    drawing shows at its width: the wide one on a desk, the narrow one on a phone)."""

    name: str
    width: int
    height: int
    left: int
    right: int = 8
    top: int = 10
    bottom: int = 24
    label_every: int = 7


WIDE_CHART = ChartShape(name="wide", width=720, height=168, left=52)
NARROW_CHART = ChartShape(name="narrow", width=320, height=180, left=40, label_every=10)


@dataclass(frozen=True)
class SentChart:
    name: str
    bars: list[ChartBar]
    ticks: list[ChartTick]
    labels: list[ChartLabel]
    total: int
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: str


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at or above ``value``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if factor * step >= value:
                return factor * step
        step *= 10


def sent_chart(days: list[tuple[dt.date, int]], shape: ChartShape = WIDE_CHART) -> SentChart:
    """The geometry of a bar chart of ``days``, drawn as inline SVG by the template."""
    width, height = shape.width, shape.height
    left, right, top, bottom = shape.left, shape.right, shape.top, shape.bottom
    plot_width = width - left - right
    plot_height = height - top - bottom
    peak = nice_ceiling(max([count for _day, count in days] + [1]))
    slot = plot_width / max(1, len(days))
    bar_width = max(1.0, slot * 0.72)
    bars = []
    for index, (day, count) in enumerate(days):
        bar_height = plot_height * count / peak
        if count:
            bar_height = max(bar_height, 1.5)
        bars.append(
            ChartBar(
                day=day,
                count=count,
                x=f"{left + index * slot + (slot - bar_width) / 2:.1f}",
                y=f"{top + plot_height - bar_height:.1f}",
                width=f"{bar_width:.1f}",
                height=f"{bar_height:.1f}",
            )
        )
    values = [0, peak // 2, peak] if peak % 2 == 0 else [0, peak]
    ticks = [
        ChartTick(label=grouped(value), y=f"{top + plot_height - plot_height * value / peak:.1f}")
        for value in values
    ]
    label_every = shape.label_every
    labels = [
        ChartLabel(day=day, x=f"{left + index * slot + slot / 2:.1f}")
        if index < len(days) - 1
        else ChartLabel(day=day, x=f"{width - right:.1f}", anchor="end")
        for index, (day, _count) in enumerate(days)
        if (len(days) - 1 - index) % label_every == 0
    ]
    return SentChart(
        name=shape.name,
        bars=bars,
        ticks=ticks,
        labels=labels,
        total=sum(count for _day, count in days),
        width=width,
        height=height,
        plot_left=left,
        plot_right=width - right,
        baseline=f"{top + plot_height:.1f}",
    )


# --- console home --------------------------------------------------------------------------


@register.inclusion_tag("admin/migrations_jobs/console_home.html", takes_context=True)
def console_home(context) -> dict:
    """Recent jobs with their progress, recent batches, and customers sent per day: what
    this user may see of them."""
    user = context["request"].user
    shown: dict = {
        "can_view_jobs": user.has_perm(VIEW_JOB),
        "can_view_batches": user.has_perm(VIEW_BATCH) or user.has_perm(CHANGE_BATCH),
        "chart_days": CHART_DAYS,
    }
    if shown["can_view_jobs"]:
        jobs = list(
            job_history(jobs=MigrationJob.objects.order_by("-created_at", "-pk"))[:RECENT_JOBS]
        )
        for job in jobs:
            job.eta_s = job_eta_s(job=job, open_chunks=job.open_chunk_count)
            job.eta_label = ""
            if job.is_active:
                job.eta_label = (
                    _("%(eta)s left") % {"eta": eta_text(job.eta_s, short=True)}
                    if job.eta_s is not None
                    else _("time left unknown")
                )
            job.duration_s = job_duration_s(job=job)
        shown["jobs"] = jobs
        shown["active_count"] = jobs_active_count()
        days = customers_sent_per_day(days=CHART_DAYS)
        shown["chart"] = sent_chart(days)
        shown["charts"] = [shown["chart"], sent_chart(days, NARROW_CHART)]
    if shown["can_view_batches"]:
        shown["batches"] = recent_batches(limit=RECENT_BATCHES)
    return shown
