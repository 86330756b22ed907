from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from console.security import ConsoleLoginForm

admin.site.site_header = _("Masivo Migration Console")
admin.site.site_title = _("Migration Console")
admin.site.index_title = _("Console")
admin.site.login_form = ConsoleLoginForm

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("migrations_jobs.api.urls")),
]

if settings.MASIVO_SANDBOX:
    urlpatterns.append(path("sandbox/", include("migrations_jobs.sandbox.urls")))
