"""django-import-export resources: one per file kind, each scoped to a staging batch.

The resources declare their columns the import-export way (``Field`` with a
``column_name`` and a parsing widget), and stage a whole file at once instead of row by
row: every row is parsed and checked first, references to customers are resolved with one
query, and only a file without a single problem is written, with bulk inserts, inside one
transaction. The preview (``dry_run``) runs the same checks and writes nothing.

Modules: ``base`` (``StagingResource`` and what it reports), ``kinds`` (one resource
per file kind). Import from the package.
"""

from customers.resources.base import (
    ERR_ALREADY_STAGED,
    ERR_DUPLICATE_COLUMN,
    ERR_DUPLICATE_IN_FILE,
    ERR_FLAT_EXPECTED,
    ERR_MISSING_COLUMNS,
    ERR_NESTED_EXPECTED,
    ERR_NO_ROWS,
    ERR_PERIOD_STAGED,
    ERR_RAGGED,
    ERR_UNKNOWN_COLUMNS,
    ERR_UNKNOWN_CUSTOMER,
    WRITE_BLOCK,
    RowProblem,
    StagingResource,
    StagingResult,
)
from customers.resources.kinds import (
    RESOURCES_BY_KIND,
    STAGING_RESOURCES,
    BalanceResource,
    ChildResource,
    CustomerResource,
    DeviceResource,
    MetricResource,
    NestedResource,
)

__all__ = [
    "BalanceResource",
    "ChildResource",
    "CustomerResource",
    "DeviceResource",
    "ERR_ALREADY_STAGED",
    "ERR_DUPLICATE_COLUMN",
    "ERR_DUPLICATE_IN_FILE",
    "ERR_FLAT_EXPECTED",
    "ERR_MISSING_COLUMNS",
    "ERR_NESTED_EXPECTED",
    "ERR_NO_ROWS",
    "ERR_PERIOD_STAGED",
    "ERR_RAGGED",
    "ERR_UNKNOWN_COLUMNS",
    "ERR_UNKNOWN_CUSTOMER",
    "MetricResource",
    "NestedResource",
    "RESOURCES_BY_KIND",
    "RowProblem",
    "STAGING_RESOURCES",
    "StagingResource",
    "StagingResult",
    "WRITE_BLOCK",
]
