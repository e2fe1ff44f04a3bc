"""Payloads an attacker could write without SECRET_KEY, for the security tests.

Each "evil" payload unpickles by calling ``open(marker, "w")``: if anything
ever unpickles it, the marker file exists. The tests assert it never does.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from django.core import signing
from picklefield.fields import dbsafe_encode

from dbqueue import serialization


class _OpensAFile:
    """Pickles as a call to open(path, "w"): unpickling it creates the file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def evil_data(marker: Path) -> str:
    """Return picklefield-encoded data whose unpickling creates `marker`."""
    # copy=False: a deep copy would run __reduce__'s call here, in the test.
    return dbsafe_encode(
        ((_OpensAFile(marker),), {}),
        pickle_protocol=serialization.PICKLE_PROTOCOL,
        copy=False,
    )


def assert_is_evil(data: str, marker: Path) -> None:
    """Check the forgery works: unpickled, it does create the marker (then remove it)."""
    from picklefield.fields import dbsafe_decode

    (opened,), _ = dbsafe_decode(data)
    opened.close()
    assert marker.exists(), "the crafted pickle would not have run code"
    marker.unlink()


def with_changed_bytes(stored: str, marker: Path) -> str:
    """Keep a genuine row's tag and signature, and swap its data for the evil pickle."""
    tag = stored.split(":", 1)[0]
    signature = stored.rsplit(":", 1)[1]
    return f"{tag}:{evil_data(marker)}:{signature}"


def signed_with_another_key(func_path: str, marker: Path, hook: str = "") -> str:
    """Sign the evil pickle for the right function, but with a key that is not SECRET_KEY."""
    signer = signing.Signer(
        key="not-the-secret-key",
        salt=f"dbqueue.payload:{func_path}:{hook}",
        algorithm="sha256",
    )
    return signer.sign(f"{serialization.PICKLE_TAG}:{evil_data(marker)}")


def unsigned(marker: Path) -> str:
    """The evil pickle with no signature at all."""
    return f"{serialization.PICKLE_TAG}:{evil_data(marker)}"


def raw_pickle(marker: Path) -> str:
    """A plain pickle as text, as someone pasting "a payload" into a form might."""
    return pickle.dumps(_OpensAFile(marker), protocol=0).decode("latin-1")
