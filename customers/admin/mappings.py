"""Mapping profiles in the admin: create, edit (the document checked as it is saved),
history, and a download of the JSON file that ``mapping_import`` and the API take."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from customers.admin.mixins import IdLookupsMixin
from customers.mapping import MappingError, mapping_parse
from customers.models import MappingProfile
from customers.services.mappings import profile_save


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, accents as they are."""

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class MappingProfileForm(forms.ModelForm):
    document = PrettyJSONField(
        label=_("Mapping"),
        help_text=_(
            'For each field of the kind, where its value comes from: {"kind": "customers", '
            '"fields": {"id": "Código", "email": {"column": "Correo", "lower": true}}, '
            '"unmapped": "ignore"}. The options are described in docs/MAPPING.md.'
        ),
        widget=forms.Textarea(
            attrs={"rows": 20, "class": "vLargeTextField", "spellcheck": "false"}
        ),
    )

    class Meta:
        model = MappingProfile
        fields = ["name", "document"]

    def clean_document(self):
        document = self.cleaned_data["document"]
        try:
            mapping_parse(document)
        except MappingError as exc:
            raise forms.ValidationError(exc.messages) from exc
        return document


@admin.register(MappingProfile)
class MappingProfileAdmin(IdLookupsMixin, admin.ModelAdmin):
    form = MappingProfileForm
    list_display = ["name", "kind", "last_used_at", "updated_at", "created_by"]
    list_filter = ["kind"]
    search_fields = ["name"]
    list_select_related = ["created_by"]
    readonly_fields = ["kind", "created_by", "created_at", "updated_at", "last_used_at", "download"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "document"]}),
        (
            _("Use"),
            {"fields": ["download", "last_used_at", "created_by", "created_at", "updated_at"]},
        ),
    ]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<int:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="{}_{}_download".format(*info),
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("JSON file"))
    def download(self, profile: MappingProfile) -> str:
        if profile.pk is None:
            return "-"
        url = reverse("admin:customers_mappingprofile_download", args=[profile.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download the mapping as JSON"))

    def download_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        profile = get_object_or_404(MappingProfile, pk=object_id)
        text = json.dumps(profile.document, indent=2, ensure_ascii=False) + "\n"
        response = HttpResponse(text, content_type="application/json; charset=utf-8")
        name = slugify(profile.name) or f"mapping-{profile.pk}"
        response["Content-Disposition"] = f'attachment; filename="{name}.mapping.json"'
        return response

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        profile_save(
            name=form.cleaned_data["name"],
            document=form.cleaned_data["document"],
            user=request.user,
            profile=obj,
        )
