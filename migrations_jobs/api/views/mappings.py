"""Mapping profiles: list, create, read, replace and delete the mappings files are staged
with (the document's format: docs/MAPPING.md)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from customers.models import MappingProfile
from customers.services.mappings import profile_save
from migrations_jobs.api.mapping_schema import MappingDocumentField
from migrations_jobs.api.views.base import (
    ConsoleListView,
    ConsoleView,
    error_responses,
    request_data,
)

VIEW = "customers.view_mappingprofile"
ADD = "customers.add_mappingprofile"
CHANGE = "customers.change_mappingprofile"
DELETE = "customers.delete_mappingprofile"
ERR_NOT_FOUND = _("There is no mapping profile with id %(id)s.")


class MappingProfileSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    document = MappingDocumentField(read_only=True)

    class Meta:
        model = MappingProfile
        fields = [
            "id", "name", "kind", "document", "created_by", "created_at", "updated_at",
            "last_used_at",
        ]  # fmt: skip
        read_only_fields = fields


class MappingProfileInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    document = MappingDocumentField(
        help_text=_(
            'The mapping: {"kind": ..., "fields": {...}, "unmapped": "refuse"|"ignore"}; '
            "its kind is the profile's."
        )
    )


def profile_or_404(profile_id: int) -> MappingProfile:
    profile = MappingProfile.objects.select_related("created_by").filter(pk=profile_id).first()
    if profile is None:
        raise NotFound(ERR_NOT_FOUND % {"id": profile_id})
    return profile


def _answer(profile: MappingProfile, code: int = status.HTTP_200_OK) -> Response:
    return Response(MappingProfileSerializer(profile_or_404(profile.pk)).data, status=code)


@extend_schema(tags=["mappings"])
class MappingListView(ConsoleListView):
    required_permissions = {"GET": (VIEW,), "POST": (ADD,)}
    serializer_class = MappingProfileSerializer

    def get_queryset(self):
        return MappingProfile.objects.select_related("created_by").order_by("name")

    @extend_schema(
        summary=_("List mapping profiles"),
        responses={200: MappingProfileSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        summary=_("Create a mapping profile"),
        description=_("The document is checked first; every mistake is listed."),
        request=MappingProfileInputSerializer,
        responses={201: MappingProfileSerializer, **error_responses(400)},
    )
    def post(self, request):
        data = request_data(MappingProfileInputSerializer, request)
        profile = profile_save(name=data["name"], document=data["document"], user=request.user)
        return _answer(profile, status.HTTP_201_CREATED)


@extend_schema(tags=["mappings"])
class MappingDetailView(ConsoleView):
    required_permissions = {"GET": (VIEW,), "PUT": (CHANGE,), "DELETE": (DELETE,)}

    @extend_schema(
        summary=_("A mapping profile"),
        responses={200: MappingProfileSerializer, **error_responses(404)},
    )
    def get(self, request, profile_id: int):
        return _answer(profile_or_404(profile_id))

    @extend_schema(
        summary=_("Replace a mapping profile"),
        request=MappingProfileInputSerializer,
        responses={200: MappingProfileSerializer, **error_responses(400, 404)},
    )
    def put(self, request, profile_id: int):
        profile = profile_or_404(profile_id)
        data = request_data(MappingProfileInputSerializer, request)
        profile_save(
            name=data["name"], document=data["document"], user=request.user, profile=profile
        )
        return _answer(profile)

    @extend_schema(
        summary=_("Delete a mapping profile"),
        description=_("Files staged with it keep the mapping they were read with."),
        request=None,
        responses={204: None, **error_responses(404)},
    )
    def delete(self, request, profile_id: int):
        profile_or_404(profile_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
