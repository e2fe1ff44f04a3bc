"""The admin tests' fixtures (users, dead letters), shared here; ``worker`` is tests/conftest.py's."""

from tests.admin.conftest import (  # noqa: F401 - fixtures, found by name
    _fresh_paused_cache,
    make_failed,
    viewer,
    viewer_client,
)
