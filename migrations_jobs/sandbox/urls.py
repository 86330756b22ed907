"""Mounted under ``sandbox/`` when MASIVO_SANDBOX is on (see config/urls.py)."""

from django.urls import path

from migrations_jobs.sandbox import views

app_name = "masivo_sandbox"

urlpatterns = [
    path("auth/authorize", views.authorize, name="authorize"),
    path("api/storefront/v1/customers/migrate", views.migrate, name="migrate"),
    path(
        "api/storefront/v1/customers/migrate/transactions",
        views.migrate_transactions,
        name="migrate_transactions",
    ),
    path("api/storefront/v1/customers/migrate/events", views.migrate_events, name="migrate_events"),
]
