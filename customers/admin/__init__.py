from customers.admin import batches, staged  # noqa: F401  (registers the admins)
