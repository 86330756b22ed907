"""The console's URLs, plus django-import-export's reference admin (see references.py)."""

from django.urls import path

from config.urls import urlpatterns as console_urlpatterns
from tests.benchmarks.references import reference_site

urlpatterns = [*console_urlpatterns, path("reference-admin/", reference_site.urls)]
