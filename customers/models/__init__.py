"""What is staged before it is sent: batches, the legacy records loaded into them, the
problems validation finds, and files staged in the background.

Modules: ``batches`` (``StagingBatch``), ``staged`` (customers, their children and the
outcome of each customer in Masivo), ``problems`` (``CustomerProblem``), ``uploads``
(``StagingUpload``). Import from the package.
"""

from customers.models.batches import StagingBatch
from customers.models.problems import CustomerProblem
from customers.models.staged import (
    AMOUNT_DECIMALS,
    AMOUNT_DIGITS,
    OUTCOME_TRANSITIONS,
    CustomerStatus,
    Gender,
    Outcome,
    Period,
    Platform,
    StagedBalance,
    StagedCustomer,
    StagedDevice,
    StagedMetric,
)
from customers.models.uploads import StagingUpload

__all__ = [
    "AMOUNT_DECIMALS",
    "AMOUNT_DIGITS",
    "OUTCOME_TRANSITIONS",
    "CustomerProblem",
    "CustomerStatus",
    "Gender",
    "Outcome",
    "Period",
    "Platform",
    "StagedBalance",
    "StagedCustomer",
    "StagedDevice",
    "StagedMetric",
    "StagingBatch",
    "StagingUpload",
]
