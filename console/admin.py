"""The admin's steps: every state change an object's page offers (a batch's validate,
approve, reopen, submit; a job's cancel, retry, resume, decisions) is a ``Step``, shown as
a button only when allowed, confirmed on one page that says what will happen, and run by
POST from that page alone. ``StepsMixin`` gives a ``ModelAdmin`` the URL, the page and the
run; the admin supplies each step's ``describe_<name>`` (the page's lines) and
``run_<name>`` (the service call, answering the message shown after).

Services' errors become one error message here (``console.errors.error_text``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from console.errors import error_text

CONFIRM_TEMPLATE = "admin/console/confirm.html"
ERR_STEP_NOT_POSSIBLE = _("“%(step)s” is not possible for %(object)s now: it is %(status)s.")


@dataclass(frozen=True)
class Step:
    """A state change offered on an object's page."""

    name: str
    label: str
    permission: str
    # The statuses of the object in which the step is offered.
    statuses: tuple[str, ...]
    # The confirmation page's question (``%(object)s`` and the admin's ``step_values``)
    # and its button.
    question: str
    # The confirmation page's button: it says what the POST does ("Yes, submit the batch").
    confirm: str
    is_danger: bool = False
    # A step back (reopen): shown apart from the steps forward, never beside them.
    is_backward: bool = False

    @property
    def button_label(self) -> str:
        """The confirmation button's text: never empty, so the button always has a name."""
        return str(self.confirm or "").strip() or str(self.label)


def step_error(request: HttpRequest, error: Exception) -> None:
    """A service's refusal, as the admin's error message."""
    messages.error(request, error_text(error))


class StepsMixin:
    """Steps for a ``ModelAdmin``: ``steps`` lists them; ``step_url_part`` names the URL
    (``<id>/<part>/<name>/``, reversed as ``admin:<app>_<model>_<part>``)."""

    steps: list[Step] = []
    step_url_part = "step"

    def step_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name, self.step_url_part
        return [
            path(
                f"<int:object_id>/{self.step_url_part}/<slug:step>/",
                self.admin_site.admin_view(self.step_view),
                name="{}_{}_{}".format(*info),
            )
        ]

    # --- what the admin supplies, beyond describe_<name> and run_<name> -------------------

    def step_object(self, request: HttpRequest, object_id: int) -> Model:
        """The object, if the user may view it (404 or 403 otherwise)."""
        obj = self.get_object(request, str(object_id))
        if obj is None:
            raise Http404
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        return obj

    def step_is_allowed(self, request: HttpRequest, obj: Model, step: Step) -> bool:
        """Whether ``step`` is offered for ``obj`` to this user now (beyond its statuses
        and permission, which are checked already)."""
        return True

    def step_values(self, obj: Model) -> dict:
        """Values for the steps' questions."""
        return {"object": str(obj)}

    # --- the mechanics ---------------------------------------------------------------------

    def allowed_steps(self, request: HttpRequest, obj: Model) -> list[Step]:
        """The steps this user may take on ``obj`` now; only these are shown."""
        return [
            step
            for step in self.steps
            if obj.status in step.statuses
            and request.user.has_perm(step.permission)
            and self.step_is_allowed(request, obj, step)
        ]

    def step_view(self, request: HttpRequest, object_id: int, step: str) -> HttpResponse:
        obj = self.step_object(request, object_id)
        chosen = next((s for s in self.steps if s.name == step), None)
        if chosen is None:
            raise Http404
        if not request.user.has_perm(chosen.permission):
            raise PermissionDenied
        back = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
        run: Callable = getattr(self, f"run_{chosen.name.replace('-', '_')}")
        if request.method == "POST":
            try:
                level, message = run(request, obj)
            except (PermissionDenied, ValidationError) as error:
                step_error(request, error)
            else:
                messages.add_message(request, level, message)
            return HttpResponseRedirect(back)
        if chosen not in self.allowed_steps(request, obj):
            messages.error(
                request,
                ERR_STEP_NOT_POSSIBLE
                % {
                    "step": chosen.label,
                    "object": self.step_values(obj)["object"],
                    "status": obj.get_status_display().lower(),
                },
            )
            return HttpResponseRedirect(back)
        describe: Callable = getattr(self, f"describe_{chosen.name.replace('-', '_')}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": obj,
            "step_label": chosen.label,
            "step_name": chosen.name,
            "confirm_label": chosen.button_label,
            "danger": chosen.is_danger,
            "title": chosen.question % self.step_values(obj),
            "description": describe(obj),
            "change_url": back,
        }
        return TemplateResponse(request, CONFIRM_TEMPLATE, context)
