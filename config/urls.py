from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", include("migrations_jobs.api.urls")),
]

if settings.MASIVO_SANDBOX:
    urlpatterns.append(path("sandbox/", include("migrations_jobs.sandbox.urls")))
