"""What is staged before it is sent: batches, the legacy records loaded into them, the
problems validation finds, files staged in the background, and mapping profiles.

Modules: ``batches`` (``StagingBatch``), ``staged`` (customers, their children and the
outcome of each customer in Masivo), ``problems`` (``CustomerProblem``), ``uploads``
(``StagingUpload``), ``mappings`` (``MappingProfile``), ``history`` (the customers'
transactions and events). Import from the package.
"""

from customers.models.batches import StagingBatch
from customers.models.history import (
    PaymentMethod,
    StagedEvent,
    StagedTransaction,
    TransactionType,
)
from customers.models.mappings import MappingProfile
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
from customers.models.uploads import OnProblems, StagingUpload

__all__ = [
    "AMOUNT_DECIMALS",
    "AMOUNT_DIGITS",
    "OUTCOME_TRANSITIONS",
    "CustomerProblem",
    "CustomerStatus",
    "MappingProfile",
    "OnProblems",
    "PaymentMethod",
    "Gender",
    "Outcome",
    "Period",
    "Platform",
    "StagedBalance",
    "StagedEvent",
    "StagedTransaction",
    "TransactionType",
    "StagedCustomer",
    "StagedDevice",
    "StagedMetric",
    "StagingBatch",
    "StagingUpload",
]
