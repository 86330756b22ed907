"""The one seam through which services schedule work on a worker.

Services never import ``tasks`` (the tasks import the services): they name the task they
want and this module hands it to the broker once the current transaction commits, so a
worker never looks for rows that are not there yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery import current_app
from django.db import transaction


@dataclass(frozen=True)
class TaskSend:
    """One task to hand to the broker: what ``task_enqueue`` registers to run on commit."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    countdown: float | None = None

    def __call__(self) -> None:
        app = current_app._get_current_object()
        if app.conf.task_always_eager:
            app.tasks[self.name].apply(args=self.args, kwargs=self.kwargs)
        else:
            app.send_task(self.name, args=self.args, kwargs=self.kwargs, countdown=self.countdown)


def task_enqueue(
    name: str,
    *,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    countdown: float | None = None,
) -> None:
    """Send the task registered as ``name`` once the current transaction commits (at once
    outside one)."""
    transaction.on_commit(
        TaskSend(name=name, args=tuple(args), kwargs=dict(kwargs or {}), countdown=countdown)
    )
