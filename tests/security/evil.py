"""Callables no worker may run: unregistered, and each leaves a witness file.

The file is the path in the DBQUEUE_TEST_EVIL_MARKER environment variable, so
a test (or a qcluster subprocess it starts) can check that nothing ran.
"""

import os
from pathlib import Path


def _witness(what: str) -> None:
    Path(os.environ["DBQUEUE_TEST_EVIL_MARKER"]).write_text(what)


def create_marker(*args, **kwargs):
    """Not a task: a row naming it must be refused."""
    _witness("create_marker ran")


def hook(task):
    """Not a hook anyone signed: a row naming it must not get it called."""
    _witness(f"hook ran for {task.id}")
