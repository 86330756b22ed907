"""django-import-export resources: one per file kind, each scoped to a staging batch.

The resources declare their columns the import-export way (``Field`` with a
``column_name`` and a parsing widget), and stage a whole file at once instead of row by
row: every row is parsed and checked first, references to customers are resolved with one
query, and only a file without a single problem is written, with bulk inserts, inside one
transaction. The preview (``dry_run``) runs the same checks and writes nothing.

Modules: ``base`` (``StagingResource``, what it reports, its messages), ``kinds`` (one
resource per file kind). The package exports what the rest of the console uses.
"""

from customers.resources.base import StagingResource, StagingResult
from customers.resources.kinds import RESOURCES_BY_KIND, STAGING_RESOURCES

__all__ = ["RESOURCES_BY_KIND", "STAGING_RESOURCES", "StagingResource", "StagingResult"]
