"""django-import-export resources: one per file kind, each scoped to a staging batch.

The resources declare their columns the import-export way (``Field`` with a
``column_name`` and a parsing widget), and stage a whole file at once instead of row by
row: every row is parsed and checked first, references to customers are resolved with one
query, and only a file without a single problem is written, with bulk inserts, inside one
transaction. The preview (``dry_run``) runs the same checks and writes nothing.

The checks include validation's own (``checks``): a problem validation would flag on the
staged customer is *flaggable*, and refuses the file unless the operator chose to stage it
anyway and fix or exclude those rows later (``on_problems="flag"``).

Nothing kept for the whole file grows by more than a few bytes a row: references to
customers are looked up block by block, and the ids, emails and periods already seen are
kept as hashes (``seen``), so a file of millions of rows stages in bounded memory.

Modules: ``base`` (``StagingResource``, its messages), ``results`` (what it reports:
``StagingResult``, ``RowProblem``), ``kinds`` (one resource per file kind), ``history``
(transactions and events), ``checks`` (validation's checks on a file's rows), ``seen``
(where each key first appears, compactly). The package exports what the rest of the
console uses, and lists the kinds (``STAGING_RESOURCES``, in the order the admin offers
them).
"""

from customers.resources.base import StagingResource
from customers.resources.history import EventResource, TransactionResource
from customers.resources.kinds import (
    BalanceResource,
    CustomerResource,
    DeviceResource,
    MetricResource,
    NestedResource,
)
from customers.resources.results import RowProblem, StagingResult

STAGING_RESOURCES = [
    CustomerResource,
    BalanceResource,
    DeviceResource,
    MetricResource,
    TransactionResource,
    EventResource,
    NestedResource,
]
RESOURCES_BY_KIND = {r.kind: r for r in STAGING_RESOURCES}

__all__ = [
    "RESOURCES_BY_KIND",
    "STAGING_RESOURCES",
    "RowProblem",
    "StagingResource",
    "StagingResult",
]
