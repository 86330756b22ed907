from customers.admin import batches, mappings, problems, staged  # noqa: F401  (registers the admins)
