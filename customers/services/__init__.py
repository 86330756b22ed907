"""Writes to staging: every change of a batch, of its staged rows, of an upload and of a
customer's outcome goes through here. Admin actions, API views, management commands and
tasks call these functions; they never assign a ``status`` themselves.

Modules: ``access`` (who may see customers' personal data, and the log of who
downloaded it), ``batches`` (create, the guarded transition, locking for an edit or an import,
counters, a customer's edit, reopen, the dry run's check), ``approval`` (the four-eyes
rule and approving), ``validation`` (validating, excluding, sending again) with
``problems`` (what validation finds), ``uploads`` (files staged in the background, the
upload's transition, the size limit), ``outcomes`` (a customer's outcome in Masivo).
Import from the package; inside it, modules import each other directly.
"""

from customers.services.access import (
    CUSTOMER_DATA_PERMISSION,
    customer_data_log,
    user_may_see_customers,
)
from customers.services.approval import (
    ERR_APPROVE_OWN_BATCH,
    batch_approve,
    batch_approvers,
    batch_may_approve,
)
from customers.services.batches import (
    ERR_NOT_EDITABLE,
    ERR_TRANSITION,
    BatchStateError,
    batch_create,
    batch_dry_run_check,
    batch_edit_check,
    batch_name_check,
    batch_refresh_counts,
    batch_reopen,
    batch_time_zone_check,
    batch_transition,
    customer_delete,
    customer_save,
)
from customers.services.outcomes import (
    customers_outcome_transition,
    customers_resend_consume,
    customers_resend_mark,
    history_rows_sent,
)
from customers.services.uploads import (
    needs_background,
    upload_check,
    upload_confirm,
    upload_create,
    upload_progress,
    upload_record,
    upload_size_check,
    upload_stage,
)
from customers.services.validation import (
    ValidationSummary,
    batch_last_validation,
    batch_validate,
    customers_set_excluded,
    customers_set_resend,
    validation_advice,
    validation_text,
)

__all__ = [
    "CUSTOMER_DATA_PERMISSION",
    "ERR_APPROVE_OWN_BATCH",
    "ERR_NOT_EDITABLE",
    "ERR_TRANSITION",
    "BatchStateError",
    "ValidationSummary",
    "batch_approve",
    "batch_approvers",
    "batch_create",
    "batch_dry_run_check",
    "batch_edit_check",
    "batch_last_validation",
    "batch_may_approve",
    "batch_name_check",
    "batch_refresh_counts",
    "batch_reopen",
    "batch_time_zone_check",
    "batch_transition",
    "batch_validate",
    "customer_data_log",
    "customer_delete",
    "customer_save",
    "customers_outcome_transition",
    "history_rows_sent",
    "customers_resend_consume",
    "customers_resend_mark",
    "customers_set_excluded",
    "customers_set_resend",
    "needs_background",
    "upload_check",
    "upload_confirm",
    "upload_create",
    "upload_progress",
    "upload_record",
    "upload_size_check",
    "upload_stage",
    "user_may_see_customers",
    "validation_advice",
    "validation_text",
]
