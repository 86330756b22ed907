"""The jobs app's tasks, scheduled through ``console.scheduling`` (services never import
``tasks``)."""

from __future__ import annotations

from console.scheduling import task_enqueue

JOB_RUN = "migrations_jobs.tasks.job_run"


def job_run_enqueue(*, job_id: int, wake: str = "", countdown: float = 0.0) -> None:
    """Schedule a run of the job (a wake-up when ``wake`` names its token)."""
    task_enqueue(
        JOB_RUN,
        args=(job_id,),
        kwargs={"wake": wake} if wake else {},
        countdown=max(0.0, countdown) or None,
    )
