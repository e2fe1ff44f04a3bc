"""Helpers of the metrics and logging tests: scraping into numbers.

Their ``worker`` fixture and ``drain()`` are tests/conftest.py's, imported
here under this module's name too.
"""

from __future__ import annotations

from tests.conftest import drain as drain


def parse(text):
    """Parse exposition text with prometheus_client's own parser into {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples


def value(samples, name, **labels):
    """Return one sample's value, 0 if the series is absent (never counted)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
