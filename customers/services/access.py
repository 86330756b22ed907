"""Who may see customers' personal data, and the record of who took it away.

Names, emails, phone numbers, devices and balances are personal data, and so are the
values validation quotes in its problems ("“ana@example” is not an email"). Every page,
endpoint, file or command that shows them (the staged customers, a batch's dry run, its
problems and the files with them, a job's customers and their CSVs) needs
``CUSTOMER_DATA_PERMISSION``: permission to view staging batches or jobs is not enough.
The admin asks ``user_may_see_customers`` (and offers no link to what it would refuse);
the API's views and the commands name the permission among the ones they require. Each
download of such data is logged by ``customer_data_log``: who, of which batch or job,
what; never the data itself.
"""

from __future__ import annotations

import logging

from console.types import Operator

logger = logging.getLogger("customers.access")

CUSTOMER_DATA_PERMISSION = "customers.view_stagedcustomer"


def user_may_see_customers(*, user: Operator) -> bool:
    """Whether ``user`` may see customers' personal data (and what quotes it)."""
    return user.has_perm(CUSTOMER_DATA_PERMISSION)


def customer_data_log(
    *, user: Operator, what: str, batch_id: int | None = None, job_id: int | None = None
) -> None:
    """Record that ``user`` downloaded ``what`` (a short name: "dry run", "problems
    CSV"...) of a batch or a job (neither: of every batch a list showed). Never pass the
    data: only who, what and of which."""
    if job_id is not None:
        of = f"job #{job_id}"
    elif batch_id is not None:
        of = f"batch {batch_id}"
    else:
        of = "every batch listed"
    logger.info(
        "Customer data downloaded: %s of %s by user %s (id %s).",
        what,
        of,
        user.get_username(),
        user.pk,
    )
