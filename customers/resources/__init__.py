"""django-import-export resources: one per file kind, each scoped to a staging batch.

The resources declare their columns the import-export way (``Field`` with a
``column_name`` and a parsing widget), and stage a whole file at once instead of row by
row: every row is parsed and checked first, references to customers are resolved with one
query, and only a file without a single problem is written, with bulk inserts, inside one
transaction. The preview (``dry_run``) runs the same checks and writes nothing.

The checks include validation's own (``checks``): a problem validation would flag on the
staged customer is *flaggable*, and refuses the file unless the operator chose to stage it
anyway and fix or exclude those rows later (``on_problems="flag"``).

Modules: ``base`` (``StagingResource``, what it reports, its messages), ``kinds`` (one
resource per file kind), ``checks`` (validation's checks on a file's rows). The package
exports what the rest of the console uses.
"""

from customers.resources.base import StagingResource, StagingResult
from customers.resources.kinds import RESOURCES_BY_KIND, STAGING_RESOURCES

__all__ = ["RESOURCES_BY_KIND", "STAGING_RESOURCES", "StagingResource", "StagingResult"]
