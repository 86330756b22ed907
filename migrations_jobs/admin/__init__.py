"""The jobs app in the admin: job history and job pages, and the batch page's submit step.

The batch admin is the customers app's, extended here (apps depend one way only:
``migrations_jobs`` -> ``customers``).
"""

from migrations_jobs.admin import (  # noqa: F401  (registers the admins)
    batches,
    chunks,
    customers,
    jobs,
)
