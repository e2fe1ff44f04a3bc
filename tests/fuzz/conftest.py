"""Hypothesis profiles for the fuzz suite, and the helpers its tests share.

``ci`` (the default) keeps the whole suite to about a minute per database,
as part of ``make test``. ``DBQUEUE_TEST_FUZZ=long`` runs many more examples:

    DBQUEUE_TEST_FUZZ=long .venv/bin/pytest tests/fuzz

Failing examples are kept under tests/.db/hypothesis (ignored by git), so a
failure found once is replayed first on the next run. Hypothesis profiles are
global: loading one here also applies to the other hypothesis tests of the
same run that do not set their own values.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / ".db" / "hypothesis"

settings.register_profile(
    "ci",
    max_examples=75,
    # A database round trip takes what it takes on a shared CI machine.
    deadline=None,
    database=DirectoryBasedExampleDatabase(str(EXAMPLES_DIR)),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=1000)
settings.load_profile(os.environ.get("DBQUEUE_TEST_FUZZ", "ci"))
