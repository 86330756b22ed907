"""A local stand-in for Masivo's auth and customers/migrate endpoints."""
