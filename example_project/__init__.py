"""A small Django project that shows dbqueue taking slow work off the request path."""
