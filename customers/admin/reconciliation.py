"""The batch page's reconciliation: the batch's transactions against its balances
(``customers.reconciliation``), shown on the page once the batch holds history, and
downloaded as CSV. It names customers: only for who may see them."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.formats import number_format
from django.utils.text import slugify

from customers.models import StagingBatch
from customers.payload.writing import number_text
from customers.reconciliation import batch_reconciliation, reconciliation_csv
from customers.services import customer_data_log, user_may_see_customers

# Customers a list of the page names before "and N more" (the CSV has them all).
LISTED = 20


def shown_amount(value: Decimal) -> str:
    """An amount as the reader writes numbers, with its own digits (no trailing zeros)."""
    return number_format(Decimal(number_text(value)), force_grouping=True)


def reconciliation_context(request: HttpRequest, batch: StagingBatch) -> dict:
    """The report for the batch page, when the batch holds history and the reader may see
    customers; nothing otherwise."""
    if not (batch.transaction_count or batch.event_count):
        return {}
    if not user_may_see_customers(user=request.user):
        return {}
    report = batch_reconciliation(batch=batch)
    rewards = [
        {
            "reward_id": r.reward_id,
            "is_matched": r.is_matched,
            "amounts": [
                shown_amount(value)
                for value in (
                    r.balances_in_files,
                    r.transactions_in_files,
                    r.balances_to_send,
                    r.transactions_to_send,
                    r.balances_sent,
                    r.transactions_sent,
                )
            ],
        }
        for r in report.rewards
    ]
    mismatches = [
        {
            "legacy_id": m.legacy_id,
            "reward_id": m.reward_id,
            "balance": shown_amount(m.balance),
            "total": shown_amount(m.total),
            "difference": shown_amount(m.difference),
        }
        for m in report.mismatches[:LISTED]
    ]
    return {
        "reconciliation": report,
        "reconciliation_rewards": rewards,
        "reconciliation_mismatches": mismatches,
        "reconciliation_more": max(0, len(report.mismatches) - LISTED),
        "reconciliation_without_balance": report.history_without_balance[:LISTED],
        "reconciliation_without_transactions": report.balance_without_transactions[:LISTED],
    }


class BatchReconciliationMixin:
    """The report's CSV download for the batch admin (``reconciliation_urls``)."""

    def reconciliation_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/reconciliation.csv",
                self.admin_site.admin_view(self.reconciliation_view),
                name="{}_{}_reconciliation".format(*info),
            )
        ]

    def reconciliation_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        batch = get_object_or_404(StagingBatch, pk=object_id)
        if not (
            self.has_view_permission(request, batch) and user_may_see_customers(user=request.user)
        ):
            raise PermissionDenied
        customer_data_log(user=request.user, what="reconciliation", batch_id=batch.pk)
        response = StreamingHttpResponse(
            reconciliation_csv(batch_reconciliation(batch=batch)), content_type="text/csv"
        )
        filename = f"{slugify(batch.name) or batch.pk}-reconciliation.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
