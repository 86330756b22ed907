"""The API's endpoints: parse the request, call a service or selector, present the result.

Permissions are declared per method (``required_permissions``, see permissions.py); the
services raise ``PermissionDenied`` for the four-eyes rule and state errors for conflicts,
which the exception handler (exceptions.py) turns into 403 and 409.
"""
