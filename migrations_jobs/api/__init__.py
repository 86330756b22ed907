"""The console's REST API: everything an operator does in the admin, open to scripts."""
