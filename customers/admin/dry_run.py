"""The batch page's dry run: the exact request bodies a job would send, downloaded.

The bodies are customers' personal data: the view needs the permission to see them
(``customers.services.user_may_see_customers``) besides the batch's, and logs each
download."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.text import slugify

from console.errors import StateConflict, error_text
from customers.models import StagingBatch
from customers.payload.history import CUSTOMERS, ENDPOINTS, dry_run_label, dry_run_lines
from customers.services import batch_dry_run_check, customer_data_log, user_may_see_customers


class BatchDryRunMixin:
    """The dry run's view for the batch admin (``dry_run_urls`` joins its URL)."""

    def dry_run_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="{}_{}_dry_run".format(*info),
            )
        ]

    def dry_run_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The exact request bodies a job would send, one per line, streamed: to the
        customers endpoint, or with ``?endpoint=transactions`` or ``events`` to that one."""
        batch = get_object_or_404(StagingBatch, pk=object_id)
        if not (
            self.has_view_permission(request, batch) and user_may_see_customers(user=request.user)
        ):
            raise PermissionDenied
        try:
            batch_dry_run_check(batch=batch)
        except StateConflict as error:
            messages.error(request, error_text(error))
            return HttpResponseRedirect(
                reverse("admin:customers_stagingbatch_change", args=[batch.pk])
            )
        endpoint = request.GET.get("endpoint", CUSTOMERS)
        if endpoint not in ENDPOINTS:
            raise Http404
        customer_data_log(user=request.user, what=dry_run_label(endpoint), batch_id=batch.pk)
        lines = dry_run_lines(endpoint=endpoint, batch=batch)
        suffix = "dry-run" if endpoint == CUSTOMERS else f"dry-run-{endpoint}"
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        filename = f"{slugify(batch.name) or batch.pk}-{suffix}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
