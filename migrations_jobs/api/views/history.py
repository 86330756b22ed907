"""The API's view of a batch's history: its reconciliation with the balances."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from customers.reconciliation import batch_reconciliation, reconciliation_csv
from customers.services import customer_data_log
from migrations_jobs.api.permissions import VIEW_BATCH, VIEW_CUSTOMER
from migrations_jobs.api.views.base import ConsoleView, CSVRenderer, error_responses
from migrations_jobs.api.views.batches import batch_or_404


class RewardTotalsSerializer(serializers.Serializer):
    reward_id = serializers.UUIDField()
    balances_in_files = serializers.DecimalField(max_digits=30, decimal_places=8)
    transactions_in_files = serializers.DecimalField(max_digits=30, decimal_places=8)
    balances_to_send = serializers.DecimalField(max_digits=30, decimal_places=8)
    transactions_to_send = serializers.DecimalField(max_digits=30, decimal_places=8)
    balances_sent = serializers.DecimalField(max_digits=30, decimal_places=8)
    transactions_sent = serializers.DecimalField(max_digits=30, decimal_places=8)
    is_matched = serializers.BooleanField()


class MismatchSerializer(serializers.Serializer):
    legacy_id = serializers.CharField()
    reward_id = serializers.UUIDField()
    balance = serializers.DecimalField(max_digits=30, decimal_places=8)
    total = serializers.DecimalField(
        max_digits=30, decimal_places=8, help_text=_("What its transactions add up to.")
    )
    difference = serializers.DecimalField(max_digits=30, decimal_places=8)


class ReconciliationSerializer(serializers.Serializer):
    is_matched = serializers.BooleanField(
        help_text=_("Every customer's transactions add up to its balance, for every reward.")
    )
    rewards = RewardTotalsSerializer(many=True)
    mismatches = MismatchSerializer(many=True)
    history_without_balance = serializers.ListField(child=serializers.CharField())
    balance_without_transactions = serializers.ListField(child=serializers.CharField())


class BatchReconciliationView(ConsoleView):
    # The report names customers.
    required_permissions = {"GET": (VIEW_BATCH, VIEW_CUSTOMER)}
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        tags=["batches"],
        summary=_("A batch's reconciliation of history and balances"),
        description=_(
            "Per reward, the balances and transactions staged from the files, to send and "
            "sent; the customers whose transactions do not add up to their balance; those "
            "with history but no balance and the reverse. As CSV with ?format=csv."
        ),
        responses={
            200: ReconciliationSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            **error_responses(400, 404),
        },
    )
    def get(self, request, batch_id: int, format=None):  # noqa: A002 - DRF's own name
        batch = batch_or_404(batch_id)
        report = batch_reconciliation(batch=batch)
        customer_data_log(user=request.user, what="reconciliation", batch_id=batch.pk)
        if request.accepted_renderer.format == CSVRenderer.format:
            response = StreamingHttpResponse(reconciliation_csv(report), content_type="text/csv")
            name = f"{slugify(batch.name) or batch.pk}-reconciliation.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        return Response(ReconciliationSerializer(report).data)
