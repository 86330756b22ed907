"""Celery tasks for staging: thin, by id, calling customers.uploads."""

from celery import shared_task

from customers import uploads


@shared_task(acks_late=True)
def upload_check_task(upload_id: int) -> None:
    uploads.upload_check(upload_id=upload_id)


@shared_task(acks_late=True)
def upload_stage_task(upload_id: int) -> None:
    uploads.upload_stage(upload_id=upload_id)
