"""A job's progress as the API answers it: counts, chunks by status, and its phases."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from migrations_jobs.models import Endpoint
from migrations_jobs.selectors.phases import PhaseState


class JobPhaseSerializer(serializers.Serializer):
    endpoint = serializers.ChoiceField(
        choices=Endpoint.choices,
        help_text=_("What the phase sends: customers, then transactions, then events."),
    )
    state = serializers.ChoiceField(
        choices=list(PhaseState.LABELS),
        help_text=_(
            "waiting (for the previous phase), sending, held (a chunk waits for a decision), "
            "done or cancelled."
        ),
    )
    chunks = serializers.IntegerField(help_text=_("Chunks of the phase."))
    total = serializers.IntegerField(
        help_text=_("Customers, or transactions or events, the phase carries.")
    )
    sent = serializers.IntegerField(help_text=_("Of those, accepted by Masivo."))
    failed = serializers.IntegerField(help_text=_("Of those, in failed chunks."))
    skipped = serializers.IntegerField(
        help_text=_(
            "Of those, left out: customers another batch sent; history whose customer is not "
            "in Masivo, or whose transactions were sent before."
        )
    )


class JobProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text=_("Customers in the job."))
    sent = serializers.IntegerField(help_text=_("Customers Masivo accepted."))
    failed = serializers.IntegerField(help_text=_("Customers whose chunk failed."))
    skipped = serializers.IntegerField(
        help_text=_(
            "Customers not sent because another batch sent them, is sending them or may have "
            "sent them (the console sends a customer id once). Not a failure."
        )
    )
    percent = serializers.IntegerField(help_text=_("Customers with an outcome, in percent."))
    chunks = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("Chunks by status.")
    )
    requests = serializers.IntegerField(help_text=_("Requests made to Masivo."))
    retried_unknown = serializers.IntegerField(
        help_text=_("Chunks sent again after an unknown outcome.")
    )
    phases = JobPhaseSerializer(many=True, help_text=_("The job's phases, in the order sent."))
