from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MigrationsJobsConfig(AppConfig):
    name = "migrations_jobs"
    verbose_name = _("Migration jobs")
