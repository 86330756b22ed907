from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SandboxConfig(AppConfig):
    name = "migrations_jobs.sandbox"
    label = "masivo_sandbox"
    verbose_name = _("Masivo sandbox")
