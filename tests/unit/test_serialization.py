import dataclasses
import datetime
import threading
import uuid
from decimal import Decimal

import pytest
from django.core import signing

from dbqueue import exceptions, serialization


@dataclasses.dataclass
class Point:
    x: int
    y: int


def send_invoice(invoice_id, report=None, *extra, **options):
    pass


def test_pickle_round_trips_rich_python_values():
    when = datetime.datetime(2026, 11, 21, 12, 30, tzinfo=datetime.UTC)
    args = (when, Decimal("1.10"), uuid.UUID(int=7), Point(1, 2))
    stored = serialization.dumps_payload("app.tasks.f", args, {"d": {"nested": [1, 2]}})
    assert serialization.loads_payload("app.tasks.f", stored) == (
        args,
        {"d": {"nested": [1, 2]}},
    )


def test_json_serializer_round_trips_plain_data(settings):
    settings.DBQUEUE_SERIALIZER = "json"
    stored = serialization.dumps_payload("app.tasks.f", (1, "two", [3]), {"four": None})
    assert stored.startswith("j:")
    assert serialization.loads_payload("app.tasks.f", stored) == (
        (1, "two", [3]),
        {"four": None},
    )


def test_rows_written_with_the_other_serializer_still_load(settings):
    stored = serialization.dumps_payload("app.tasks.f", (1,), {})
    settings.DBQUEUE_SERIALIZER = "json"
    assert serialization.loads_payload("app.tasks.f", stored) == ((1,), {})


def test_unpicklable_argument_is_named_with_its_type_and_a_fix():
    with (
        open(__file__, "rb") as report,
        pytest.raises(exceptions.SerializationError) as info,
    ):
        serialization.dumps_payload(
            "billing.tasks.send_invoice", (7, report), {}, func=send_invoice
        )
    message = str(info.value)
    assert (
        "Argument 'report' of send_invoice() is an _io.BufferedReader, which cannot be pickled"
        in message
    )
    assert "Pass the file's path or its id" in message
    assert isinstance(info.value, TypeError)


def test_lambda_and_lock_arguments_are_refused_by_name():
    with pytest.raises(
        exceptions.SerializationError, match=r"Argument 'callback' .*function"
    ):
        serialization.dumps_payload(
            "m.f", (), {"callback": lambda: 1}, func=send_invoice
        )
    with pytest.raises(
        exceptions.SerializationError, match=r"Argument 'extra\[0\]' .*lock"
    ):
        serialization.dumps_payload(
            "m.f", (1, 2, threading.Lock()), {}, func=send_invoice
        )


def test_json_serializer_refuses_a_datetime_and_names_the_setting(settings):
    settings.DBQUEUE_SERIALIZER = "json"
    with pytest.raises(exceptions.SerializationError) as info:
        serialization.dumps_payload(
            "m.send_invoice", (datetime.date(2026, 1, 1),), {}, func=send_invoice
        )
    assert (
        "Argument 'invoice_id' of send_invoice() is a datetime.date, which JSON cannot encode"
        in str(info.value)
    )
    assert "DBQUEUE_SERIALIZER = 'pickle'" in str(info.value)


def test_payload_over_the_limit_names_the_limit(settings):
    settings.DBQUEUE_MAX_PAYLOAD_SIZE = 1024 * 1024
    with pytest.raises(exceptions.PayloadTooLarge) as info:
        serialization.dumps_payload("m.send_invoice", ("x" * 5 * 1024 * 1024,), {})
    assert "over the DBQUEUE_MAX_PAYLOAD_SIZE limit of 1.0 MiB" in str(info.value)


def test_altered_payload_is_refused_before_unpickling():
    stored = serialization.dumps_payload("m.f", (1,), {})
    tag, _data, signature = stored.split(":")
    forged = serialization._encode("pickle", ((2,), {})).partition(":")[2]
    with pytest.raises(exceptions.PayloadSignatureError, match="does not verify"):
        serialization.loads_payload("m.f", f"{tag}:{forged}:{signature}")


def test_payload_is_bound_to_its_function_and_hook():
    stored = serialization.dumps_payload("m.f", (1,), {}, hook="m.h")
    with pytest.raises(exceptions.PayloadSignatureError):
        serialization.loads_payload("os.system", stored, hook="m.h")
    with pytest.raises(exceptions.PayloadSignatureError):
        serialization.loads_payload("m.f", stored, hook="os.system")
    assert serialization.loads_payload("m.f", stored, hook="m.h") == ((1,), {})


def test_payload_signed_with_another_key_is_refused(settings):
    stored = serialization.dumps_payload("m.f", (1,), {})
    settings.SECRET_KEY = "another-key"  # noqa: S105
    with pytest.raises(exceptions.PayloadSignatureError):
        serialization.loads_payload("m.f", stored)


def test_rotated_key_in_fallbacks_still_verifies(settings):
    stored = serialization.dumps_payload("m.f", (1,), {})
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-key"  # noqa: S105
    assert serialization.loads_payload("m.f", stored) == ((1,), {})


def test_signatures_are_djangos_signer_byte_for_byte(settings):
    # Rows written before dbqueue kept its derived keys were signed by
    # django.core.signing.Signer; both must keep verifying each other's.
    salt = "dbqueue.payload:m.f:m.h"
    theirs = signing.Signer(salt=salt, algorithm="sha256")
    stored = serialization.dumps_payload("m.f", (1, "é"), {"k": [2]}, hook="m.h")
    text = stored.rpartition(":")[0]
    assert stored == theirs.sign(text)
    assert serialization.loads_payload("m.f", theirs.sign(text), hook="m.h") == (
        (1, "é"),
        {"k": [2]},
    )
    settings.SECRET_KEY = "another-key"  # noqa: S105
    assert serialization.dumps_payload(
        "m.f", (1, "é"), {"k": [2]}, hook="m.h"
    ) == signing.Signer(salt=salt, algorithm="sha256").sign(text)


def test_a_signature_that_is_not_ascii_is_refused_not_crashed_on():
    stored = serialization.dumps_payload("m.f", (1,), {})
    for forged in (stored[:-1] + "é", stored[:-1] + "\udcff", "no-separator"):
        with pytest.raises(exceptions.PayloadSignatureError):
            serialization.loads_payload("m.f", forged)


@pytest.mark.parametrize(
    "data",
    ["p:not-base64!!", "p:" + "QUJD", "x:whatever", "j:{not json"],
)
def test_signed_but_unreadable_payload_is_a_payload_error(data):
    stored = serialization._signer("m.f", "payload").sign(data)
    with pytest.raises(exceptions.PayloadError):
        serialization.loads_payload("m.f", stored)


def test_signed_payload_of_the_wrong_shape_is_a_payload_error():
    stored = serialization._signer("m.f", "payload").sign('j:{"args": [1]}')
    with pytest.raises(
        exceptions.PayloadError, match="not the \\(args, kwargs\\) pair"
    ):
        serialization.loads_payload("m.f", stored)


def test_result_round_trip_and_unstorable_result():
    stored = serialization.dumps_result("m.f", Decimal("2.5"))
    assert serialization.loads_result("m.f", stored) == Decimal("2.5")
    with pytest.raises(exceptions.SerializationError, match="Unsupported type"):
        serialization.dumps_result("m.f", threading.Lock())


def test_a_none_result_is_signed_with_the_key_and_serializer_of_the_moment(settings):
    first = serialization.dumps_result("m.f", None)
    assert serialization.loads_result("m.f", first) is None
    settings.SECRET_KEY = "another-key-for-this-test-" + "k" * 30
    second = serialization.dumps_result("m.f", None)
    assert second != first
    assert serialization.loads_result("m.f", second) is None
    as_json = serialization.dumps_result("m.f", None, serializer="json")
    assert as_json.startswith("j:null:")
    assert serialization.loads_result("m.f", as_json) is None
    with pytest.raises(exceptions.SerializationError, match="DBQUEUE_SERIALIZER"):
        serialization.dumps_result("m.f", None, serializer="yaml")


def test_pickled_values_are_encoded_as_django_picklefield_encodes_them():
    """dbqueue writes picklefield's encoding itself and reads it with picklefield."""
    from picklefield.fields import dbsafe_encode

    value = ((1, "é", [2.5, None]), {"k": {"nested": True}})
    encoded = serialization._encode("pickle", value)
    assert encoded == "p:" + dbsafe_encode(value, pickle_protocol=5, copy=False)
