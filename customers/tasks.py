"""Celery tasks for staging: thin, by id, calling the services.

Services schedule them by name (``console.scheduling.task_enqueue``); they import the
services, never the reverse.
"""

from celery import shared_task

from customers.services import upload_check, upload_stage


@shared_task(acks_late=True)
def upload_check_task(upload_id: int) -> None:
    upload_check(upload_id=upload_id)


@shared_task(acks_late=True)
def upload_stage_task(upload_id: int) -> None:
    upload_stage(upload_id=upload_id)
