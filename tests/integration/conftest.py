"""The sandbox over loopback and a job without pacing, as the job tests have them."""

from tests.migrations_jobs.conftest import quick, sandboxed  # noqa: F401
