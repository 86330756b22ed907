"""Admin for what validation found, by customer and field: the list is read-only (fix the
customer instead), filtered to what still blocks a batch, with an action that excludes the
selected problems' customers (with a reason), a CSV of the listed problems, and the
batch's files to download with their problems beside their rows.

A problem quotes the customer's values (an email, a phone number): the list, its CSV and
the files need the permission to see customers (``user_may_see_customers``), whatever
else the user may view; each download is logged."""

from __future__ import annotations

from itertools import groupby

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from console.errors import error_text
from customers.admin.mixins import IdLookupsMixin
from customers.exports import StagedFileNames, problem_row_number, problems_csv
from customers.models import CustomerProblem, StagedCustomer, StagingBatch, StagingUpload
from customers.problem_files import batch_problem_files, upload_error_file
from customers.services import customer_data_log, customers_set_excluded, user_may_see_customers
from customers.services.problems import REASON_MAX
from customers.staging import grouped

EXCLUDE_PERMISSION = "customers.change_stagedcustomer"
EXCLUDE_TEMPLATE = "admin/customers/customerproblem/exclude.html"
# How many of the customers to exclude the confirmation page names.
NAMED_ON_PAGE = 20
MSG_NO_CUSTOMER = _(
    "None of the selected problems is of a customer of its batch (they are balance, device "
    "or metric rows of another batch's customer): delete those rows instead."
)


class BlockingFilter(admin.SimpleListFilter):
    """Problems that still keep their batch from being validated (those of customers to
    send, and rows whose customer is elsewhere), or those of excluded customers."""

    title = _("blocks the batch")
    parameter_name = "blocking"
    BLOCKING = Q(customer__isnull=True) | Q(customer__is_excluded=False)

    def lookups(self, request, model_admin):
        return [("yes", _("Yes: to fix or exclude")), ("no", _("No: customer excluded"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.BLOCKING)
        if self.value() == "no":
            return queryset.exclude(self.BLOCKING)
        return queryset


class ExcludeForm(forms.Form):
    reason = forms.CharField(
        label=_("Why are they excluded?"),
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept with each customer; shown in the customer list and on its page."),
    )


@admin.register(CustomerProblem)
class CustomerProblemAdmin(IdLookupsMixin, admin.ModelAdmin):
    """What validation found, by customer and field; read-only (fix the customer instead)."""

    list_display = [
        "customer_link",
        "state",
        "field",
        "code",
        "message_shown",
        "other_batch",
        "batch",
    ]
    # Read-only rows: the customer's own link is the row's only link (no link inside a link).
    list_display_links = None
    list_filter = ["batch", BlockingFilter, "code", "field"]
    search_fields = ["legacy_id", "message"]
    list_select_related = ["batch", "other_batch", "customer"]
    list_per_page = 100
    actions = ["exclude_customers"]

    def get_list_display(self, request):
        """The file column reads each batch's staged files once per page."""
        files = StagedFileNames()

        @admin.display(description=_("file"))
        def file(problem: CustomerProblem) -> str:
            names = ", ".join(files.of(problem))
            row = problem_row_number(problem)
            if row is None:
                return names
            if not names:
                return _("row %(row)s") % {"row": row}
            return _("%(files)s, row %(row)s") % {"files": names, "row": row}

        return [*self.list_display[:5], file, *self.list_display[5:]]

    def get_search_results(self, request, queryset, search_term):
        """The English text, and also each message in the reader's language: a problem
        whose template, translated, holds every word searched for matches too (its values,
        such as an email, are the same in every language and are in the English text)."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        words = [word.casefold() for word in search_term.split()]
        if not words:
            return found, may_have_duplicates
        templates = queryset.exclude(message_template="").values_list("message_template", flat=True)
        said = [
            template
            for template in templates.order_by().distinct()
            if all(word in gettext(template).casefold() for word in words)
        ]
        if said:
            found = found | queryset.filter(message_template__in=said)
        return found, may_have_duplicates

    @admin.display(description=_("customer"), ordering="legacy_id")
    def customer_link(self, obj: CustomerProblem) -> str:
        if obj.customer_id is None:
            return obj.legacy_id
        url = reverse("admin:customers_stagedcustomer_change", args=[obj.customer_id])
        return format_html('<a href="{}">{}</a>', url, obj.legacy_id)

    @admin.display(description=_("message"))
    def message_shown(self, obj: CustomerProblem) -> str:
        """In the reader's language (``message`` is searched: it holds the English)."""
        return obj.get_message_display()

    @admin.display(description=_("state"))
    def state(self, obj: CustomerProblem) -> str:
        """Whether the problem still blocks its batch: a warning while it does, a neutral
        word once its customer is excluded."""
        if obj.customer is not None and obj.customer.is_excluded:
            return format_html(
                '<span class="console-excluded" title="{}">{}</span>',
                obj.customer.exclusion_reason,
                gettext("Excluded"),
            )
        return format_html('<span class="console-blocking">{}</span>', gettext("To fix"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        """Those who may view batches (or problems) and see customers' data."""
        may_view = request.user.has_perm("customers.view_stagingbatch") or (
            super().has_view_permission(request, obj)
        )
        return may_view and user_may_see_customers(user=request.user)

    def has_exclude_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXCLUDE_PERMISSION)

    def get_urls(self):
        return [
            path(
                "file/<int:upload_id>/<str:as_format>/",
                self.admin_site.admin_view(self.problem_file_view),
                name="customers_customerproblem_file",
            ),
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_view),
                name="customers_customerproblem_export",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        """Filtered to one batch: its staged files, each to download with its problems;
        and the listed problems as CSV."""
        extra_context = extra_context or {}
        extra_context["can_export"] = self.has_view_permission(request)
        batch_id = request.GET.get("batch__id__exact", "")
        if batch_id.isdigit() and self.has_view_permission(request):
            batch = StagingBatch.objects.filter(pk=int(batch_id)).first()
            if batch is not None:
                extra_context["problem_files"] = batch_problem_files(batch=batch)
        return super().changelist_view(request, extra_context=extra_context)

    # --- the listed problems as CSV ------------------------------------------------------

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """The problems the list shows with the same filters and search, every page of
        them (names and emails: it needs the permission to view staged customers)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:customers_customerproblem_changelist"))
        problems = changelist.get_queryset(request).select_related("batch", "customer")
        batch_id = request.GET.get("batch__id__exact", "")
        customer_data_log(
            user=request.user,
            what="problems CSV",
            batch_id=int(batch_id) if batch_id.isdigit() else None,
        )
        response = StreamingHttpResponse(
            problems_csv(problems.iterator(chunk_size=2000)), content_type="text/csv"
        )
        response["Content-Disposition"] = 'attachment; filename="problems.csv"'
        return response

    # --- exclude the selected problems' customers, with a reason -------------------------

    @admin.action(
        description=_("Exclude the customers of the selected problems (with a reason)"),
        permissions=["exclude"],
    )
    def exclude_customers(self, request: HttpRequest, queryset: QuerySet[CustomerProblem]):
        customers = StagedCustomer.objects.filter(
            pk__in=queryset.exclude(customer__isnull=True).values("customer_id")
        )
        form = ExcludeForm(request.POST if "reason" in request.POST else None)
        if not customers.exists():
            self.message_user(request, MSG_NO_CUSTOMER, messages.WARNING)
            return None
        if not form.is_valid():
            return self._exclude_page(request, customers, form)
        done = 0
        rows = customers.select_related("batch").order_by("batch_id", "pk")
        for batch, members in groupby(rows, key=lambda customer: customer.batch):
            try:
                done += customers_set_excluded(
                    batch=batch,
                    customer_ids=[customer.pk for customer in members],
                    excluded=True,
                    reason=form.cleaned_data["reason"],
                    user=request.user,
                )
            except (PermissionDenied, ValidationError) as error:
                self.message_user(request, error_text(error), messages.ERROR)
        if done:
            text = ngettext(
                "%(n)s customer is excluded from the migration. Validate its batch again.",
                "%(n)s customers are excluded from the migration. Validate their batch again.",
                done,
            )
            self.message_user(request, text % {"n": grouped(done)}, messages.SUCCESS)
        return None

    def _exclude_page(self, request, customers, form) -> TemplateResponse:
        count = customers.count()
        named = customers.select_related("batch").order_by("batch_id", "legacy_id")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Exclude these customers from the migration?"),
            "form": form,
            "customers": format_html_join(
                "",
                '<li>{} <span class="quiet">({})</span></li>',
                ((c.legacy_id, c.batch.name) for c in named[:NAMED_ON_PAGE]),
            ),
            "more": max(count - NAMED_ON_PAGE, 0),
            "count": count,
            "count_text": grouped(count),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            # As the list posted them: the rows ticked, and whether every page was chosen.
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "back_url": request.get_full_path(),
        }
        return TemplateResponse(request, EXCLUDE_TEMPLATE, context)

    # --- a staged file with its problems ------------------------------------------------

    def problem_file_view(self, request, upload_id: int, as_format: str) -> HttpResponse:
        """A staged file with its batch's problems beside its rows (personal data: it needs
        the permission to view staged customers)."""
        upload = get_object_or_404(StagingUpload.objects.select_related("batch"), pk=upload_id)
        if not user_may_see_customers(user=request.user) or as_format not in ("csv", "xlsx"):
            raise PermissionDenied
        customer_data_log(
            user=request.user,
            what=f"file {upload.pk} with its problems ({as_format})",
            batch_id=upload.batch_id,
        )
        body, name, content_type = upload_error_file(upload=upload, as_format=as_format)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
