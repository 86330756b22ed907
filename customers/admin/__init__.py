from customers.admin import batches, mappings, staged  # noqa: F401  (registers the admins)
