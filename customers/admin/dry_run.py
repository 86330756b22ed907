"""The batch page's dry run: the exact request bodies a job would send, downloaded."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.text import slugify

from console.errors import StateConflict, error_text
from customers.models import StagingBatch
from customers.payload import batch_dry_run_lines
from customers.services import batch_dry_run_check


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
        """The exact request bodies a job would send, one per line, streamed."""
        batch = get_object_or_404(StagingBatch, pk=object_id)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        try:
            batch_dry_run_check(batch=batch)
        except StateConflict as error:
            messages.error(request, error_text(error))
            return HttpResponseRedirect(
                reverse("admin:customers_stagingbatch_change", args=[batch.pk])
            )
        response = StreamingHttpResponse(
            batch_dry_run_lines(batch=batch), content_type="application/x-ndjson"
        )
        filename = f"{slugify(batch.name) or batch.pk}-dry-run.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
