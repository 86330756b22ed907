"""The staged-customer list, extended by the jobs app: "send again", which needs a reason
and the permission to approve batches, and is recorded (``SendAgain``)."""

from __future__ import annotations

from itertools import groupby

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from console.errors import error_text
from customers.admin.staged import StagedCustomerAdmin
from customers.models import StagedCustomer, StagingBatch
from migrations_jobs import services
from migrations_jobs.services.actions import REASON_CHARS
from migrations_jobs.templatetags.console_jobs import grouped


class SendAgainForm(forms.Form):
    reason = forms.CharField(
        label=_("Why must they be sent again?"),
        max_length=REASON_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Recorded with your name and the customers."),
        error_messages={"required": services.base.ERR_SEND_AGAIN_REASON},
    )


admin.site.unregister(StagedCustomer)


@admin.register(StagedCustomer)
class SendableCustomerAdmin(StagedCustomerAdmin):
    actions = [*StagedCustomerAdmin.actions, "send_again"]

    def has_send_again_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.SEND_AGAIN_PERMISSION)

    @admin.action(
        description=_("Send selected customers again (with a reason)"),
        permissions=["send_again"],
    )
    def send_again(self, request: HttpRequest, queryset: QuerySet[StagedCustomer]):
        form = SendAgainForm(request.POST if "reason" in request.POST else None)
        if not form.is_valid():
            return self._send_again_page(request, queryset, form)
        sent = 0
        rows = queryset.select_related("batch").order_by("batch_id", "pk")
        for batch, customers in groupby(rows, key=lambda customer: customer.batch):
            try:
                record = services.customers_send_again(
                    batch=batch,
                    customer_ids=[customer.pk for customer in customers],
                    reason=form.cleaned_data["reason"],
                    user=request.user,
                )
            except (PermissionDenied, ValidationError) as error:
                self.message_user(request, error_text(error), messages.ERROR)
            else:
                sent += record.customer_count
        if sent:
            self.message_user(
                request,
                ngettext(
                    "%(n)s customer will be sent again; the decision is recorded.",
                    "%(n)s customers will be sent again; the decision is recorded.",
                    sent,
                )
                % {"n": grouped(sent)},
                messages.SUCCESS,
            )
        return None

    def _send_again_page(
        self, request: HttpRequest, queryset: QuerySet[StagedCustomer], form: SendAgainForm
    ) -> TemplateResponse:
        count = queryset.count()
        statuses = set(queryset.values_list("batch__status", flat=True).distinct())
        context = {
            "in_submitted": StagingBatch.Status.SUBMITTED in statuses,
            "in_unsubmitted": bool(statuses - {StagingBatch.Status.SUBMITTED}),
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Send customers again?"),
            "form": form,
            "queryset": queryset[:20],
            "count": count,
            "count_text": grouped(count),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": queryset.values_list("pk", flat=True),
        }
        return TemplateResponse(
            request, "admin/migrations_jobs/stagedcustomer/send_again.html", context
        )
