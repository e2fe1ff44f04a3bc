"""Task payloads and results as signed text.

A stored value is ``<tag>:<data>:<signature>``: the tag names the serializer
(``p`` pickle through django-picklefield's base64 encoding, ``j`` JSON), and the
signature is an HMAC of tag and data keyed by SECRET_KEY and salted with the
task's dotted path (and hook). A worker checks the signature before it unpickles anything,
so whoever can write rows without holding the key can neither run code through
pickle nor move one task's arguments onto another function. Rotating the key
with SECRET_KEY_FALLBACKS keeps queued tasks readable.

The tag travels with the value, so changing DBQUEUE_SERIALIZER does not strand
rows queued before the change.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import inspect
import io
import json
import pickle
import threading
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.conf import settings as django_settings
from django.core import signing
from django.db import models
from django.utils.encoding import force_bytes
from picklefield.fields import dbsafe_decode

from dbqueue import exceptions, validation
from dbqueue.conf import settings

PICKLE_TAG = "p"
JSON_TAG = "j"
SERIALIZERS = {"pickle": PICKLE_TAG, "json": JSON_TAG}
PICKLE_PROTOCOL = 5


def dumps_payload(
    func_path: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    func: Callable[..., Any] | None = None,
    hook: str = "",
    serializer: str | None = None,
) -> str:
    """Serialise and sign a call's arguments (with DBQUEUE_SERIALIZER unless `serializer` is given).

    Raise SerializationError naming the argument that the serializer cannot
    take, and PayloadTooLarge when the result exceeds DBQUEUE_MAX_PAYLOAD_SIZE;
    ValueError for an unknown serializer, and TypeError unless `args` is a
    tuple or a list and `kwargs` a dict with string keys.
    """
    writer = PayloadWriter.of(func_path, func=func, hook=hook, serializer=serializer)
    return writer.write(args, kwargs)


@dataclasses.dataclass(frozen=True)
class PayloadWriter:
    """dumps_payload() for one function, hook and serializer, with what they decide looked up once.

    A bulk enqueue writes thousands of payloads for the same function:
    the serializer, the signer and the size limit are the same for all of
    them, and only the arguments are serialised and signed for each.
    """

    func_path: str
    func: Callable[..., Any] | None
    serializer: str
    key: _Key  # the signer's, keyed with SECRET_KEY
    limit: int

    @classmethod
    def of(
        cls,
        func_path: str,
        *,
        func: Callable[..., Any] | None = None,
        hook: str = "",
        serializer: str | None = None,
    ) -> PayloadWriter:
        """Return the writer of this function's payloads; ValueError for an unknown serializer."""
        name = serializer if serializer is not None else settings.SERIALIZER
        if not isinstance(name, str) or name not in SERIALIZERS:
            source = "serializer" if serializer is not None else "DBQUEUE_SERIALIZER"
            raise ValueError(
                f"{source} must be 'pickle' or 'json', got {validation.shown(name)}."
            )
        return cls(
            func_path=func_path,
            func=func,
            serializer=name,
            key=_signer(func_path, "payload", hook).key(django_settings.SECRET_KEY),
            limit=settings.MAX_PAYLOAD_SIZE,
        )

    def write(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        """Return the signed payload of these arguments; raise as dumps_payload() does."""
        func_path = self.func_path
        # A string would be taken apart into characters, and a key that is not
        # a string makes a call that no worker can make.
        if type(args) is not tuple and (
            isinstance(args, str | bytes) or not isinstance(args, tuple | list)
        ):
            raise TypeError(
                f"args of {_short(func_path)}() must be a tuple or a list, "
                f"got {type(args).__name__}."
            )
        if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
            raise TypeError(
                f"kwargs of {_short(func_path)}() must be a dict, got {type(kwargs).__name__}."
            )
        for key in kwargs:
            if not isinstance(key, str):
                raise TypeError(
                    f"kwargs of {_short(func_path)}() must have parameter names as keys, "
                    f"got a {type(key).__name__} key."
                )
        try:
            text = _encode(
                self.serializer,
                (tuple(args), kwargs if type(kwargs) is dict else dict(kwargs)),
            )
        except Exception as exc:
            raise exceptions.SerializationError(
                _argument_error(
                    self.serializer, func_path, self.func, args, kwargs, exc
                )
            ) from exc
        signed = self.key.sign(text)
        if len(signed) > self.limit:
            raise exceptions.PayloadTooLarge(
                f"The arguments of {_short(func_path)}() take {_size(len(signed))} once "
                f"serialised, over the DBQUEUE_MAX_PAYLOAD_SIZE limit of {_size(self.limit)}. "
                "Store the data in a file or a model and pass its path or id instead."
            )
        return signed


def loads_payload(
    func_path: str, stored: str, *, hook: str = ""
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Verify and decode a payload written by dumps_payload().

    Raise PayloadSignatureError if the signature does not verify (nothing is
    unpickled then), and PayloadError if the verified data cannot be decoded.
    """
    value = _verify_and_decode(func_path, "payload", stored, hook)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not isinstance(value[0], (tuple, list))
        or not isinstance(value[1], dict)
    ):
        raise exceptions.PayloadError(
            f"The payload is a {type(value).__name__}, not the (args, kwargs) pair dbqueue writes."
        )
    return tuple(value[0]), dict(value[1])


def dumps_result(func_path: str, value: Any, *, serializer: str | None = None) -> str:
    """Serialise and sign a task's return value.

    `serializer` defaults to DBQUEUE_SERIALIZER; pass serializer_of(payload)
    to store a result the way its task's arguments were stored (a task
    enqueued as JSON, such as a Django Tasks call, returns JSON).
    Raise SerializationError if the serializer cannot take the value.
    """
    name = serializer or settings.SERIALIZER
    try:
        if value is None:
            return _signed_none(func_path, name, django_settings.SECRET_KEY)
        text = _encode(name, value)
    except Exception as exc:
        raise exceptions.SerializationError(
            f"The return value of {_short(func_path)}() is {_a(value)}, which "
            f"{_cannot(name)}: {exc}. Unsupported type; return plain data instead."
        ) from exc
    return _signer(func_path, "result").sign(text)


def serializer_of(stored: str) -> str:
    """Return the name of the serializer a stored value was written with."""
    tag = stored.partition(":")[0]
    for name, known in SERIALIZERS.items():
        if known == tag:
            return name
    raise exceptions.PayloadError(
        f"The stored value has an unknown serializer tag {tag!r}."
    )


def loads_result(func_path: str, stored: str) -> Any:
    """Verify and decode a result written by dumps_result()."""
    return _verify_and_decode(func_path, "result", stored)


@functools.lru_cache(maxsize=256)
def _signed_none(func_path: str, serializer: str, secret: str | bytes) -> str:
    # Most tasks return None, and its stored form depends only on these three:
    # a worker then serialises and signs it once per task function.
    return _signer(func_path, "result").sign(_encode(serializer, None))


class _Signer:
    """Django's ``Signer(salt=..., algorithm="sha256")``, with its keys derived once.

    The signatures are Django's, byte for byte (a test compares them), so
    rows signed by either verify with the other. Django derives the HMAC key
    from salt and SECRET_KEY again for every value; a worker verifies one
    payload per task and enqueue signs one per call, so the derived keys are
    kept here, for each salt and secret, which costs a hash per value.
    """

    def __init__(self, salt: str) -> None:
        self.salt = salt

    def key(self, secret: str | bytes) -> _Key:
        """This salt's HMAC keyed with `secret`, ready to sign many values."""
        return _keyed_hashes(self.salt, secret)

    def signature(self, value: str, secret: str | bytes) -> str:
        return self.key(secret).signature(value)

    def sign(self, value: str) -> str:
        return self.key(django_settings.SECRET_KEY).sign(value)

    def unsign(self, signed: str) -> str:
        value, separator, signature = signed.rpartition(":")
        if separator:
            for secret in [
                django_settings.SECRET_KEY,
                *django_settings.SECRET_KEY_FALLBACKS,
            ]:
                expected = self.signature(value, secret).encode()
                if hmac.compare_digest(
                    signature.encode(errors="surrogatepass"), expected
                ):
                    return value
        raise signing.BadSignature(f'Signature "{signature}" does not match')


class _Key:
    """HMAC-SHA256 for one salt and secret: the inner and outer hashes with the key fed in (RFC 2104).

    HMAC of a value is SHA-256 over key-xor-0x36 then the value, and again
    over key-xor-0x5c then that digest. Copying hashes that have taken the
    key halves the cost of hmac.digest(), which sets up both for every value.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, inner: Any, outer: Any) -> None:
        self.inner = inner
        self.outer = outer

    def signature(self, value: str) -> str:
        inner = self.inner.copy()
        inner.update(value.encode())
        outer = self.outer.copy()
        outer.update(inner.digest())
        return signing.b64_encode(outer.digest()).decode()

    def sign(self, value: str) -> str:
        return f"{value}:{self.signature(value)}"


@functools.lru_cache(maxsize=1024)
def _keyed_hashes(salt: str, secret: str | bytes) -> _Key:
    # What django.utils.crypto.salted_hmac(salt + "signer", value, secret) keys its HMAC with.
    key = hashlib.sha256(force_bytes(salt + "signer") + force_bytes(secret)).digest()
    block = key.ljust(hashlib.sha256().block_size, b"\0")
    return _Key(
        hashlib.sha256(bytes(byte ^ 0x36 for byte in block)),
        hashlib.sha256(bytes(byte ^ 0x5C for byte in block)),
    )


@functools.lru_cache(maxsize=1024)
def _signer(func_path: str, kind: str, hook: str = "") -> _Signer:
    # The salt binds the signature to the function (and the hook) the value
    # was written for: a row whose func or hook column was edited no longer verifies.
    return _Signer(salt=f"dbqueue.{kind}:{func_path}:{hook}")


def _encode(serializer: str, value: Any) -> str:
    tag = SERIALIZERS.get(serializer)
    if tag == PICKLE_TAG:
        # django-picklefield's dbsafe_encode(value, copy=False), which
        # dbsafe_decode() reads, without its str subclass around the result.
        data = base64.b64encode(pickle.dumps(value, PICKLE_PROTOCOL)).decode("ascii")
    elif tag == JSON_TAG:
        data = json.dumps(value, separators=(",", ":"), allow_nan=False)
    else:
        raise exceptions.SerializationError(
            f"DBQUEUE_SERIALIZER is {serializer!r}; use 'pickle' or 'json'."
        )
    return f"{tag}:{data}"


def _verify_and_decode(func_path: str, kind: str, stored: str, hook: str = "") -> Any:
    try:
        text = _signer(func_path, kind, hook).unsign(stored)
    except signing.BadSignature as exc:
        raise exceptions.PayloadSignatureError(
            f"The {kind} of this {func_path!r} task has a signature that does not verify "
            "with SECRET_KEY (or SECRET_KEY_FALLBACKS): the row was altered or written "
            "without the key, so it was not decoded."
        ) from exc
    tag, _, data = text.partition(":")
    try:
        if tag == PICKLE_TAG:
            return dbsafe_decode(data)
        if tag == JSON_TAG:
            return json.loads(data)
    except Exception as exc:
        raise exceptions.PayloadError(
            f"The {kind} of this {func_path!r} task verified but cannot be decoded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    raise exceptions.PayloadError(f"The {kind} has an unknown serializer tag {tag!r}.")


def _argument_error(
    serializer: str,
    func_path: str,
    func: Callable[..., Any] | None,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    error: Exception,
) -> str:
    """Name the first argument the serializer rejects, its type and one fix."""
    for name, value in _named_arguments(func, args, kwargs):
        try:
            _encode(serializer, value)
        except Exception as exc:
            return (
                f"Argument {name!r} of {_short(func_path)}() is {_a(value)}, which "
                f"{_cannot(serializer)} ({exc}). {_hint(serializer, value)}"
            )
    return (
        f"The arguments of {_short(func_path)}() {_cannot(serializer)}: "
        f"{type(error).__name__}: {error}"
    )


def _named_arguments(
    func: Callable[..., Any] | None, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    if func is not None:
        try:
            bound = inspect.signature(func).bind_partial(*args, **kwargs)
        except (TypeError, ValueError):
            pass
        else:
            named: list[tuple[str, Any]] = []
            for name, value in bound.arguments.items():
                kind = bound.signature.parameters[name].kind
                if kind is inspect.Parameter.VAR_POSITIONAL:
                    named.extend((f"{name}[{i}]", v) for i, v in enumerate(value))
                elif kind is inspect.Parameter.VAR_KEYWORD:
                    named.extend(value.items())
                else:
                    named.append((name, value))
            return named
    return [(f"args[{i}]", v) for i, v in enumerate(args)] + list(kwargs.items())


def _hint(serializer: str, value: Any) -> str:
    if isinstance(value, models.Model):
        return "Pass its primary key and load the object inside the task."
    if isinstance(value, io.IOBase):
        return "Pass the file's path or its id and open it inside the task."
    if isinstance(value, (types.FunctionType, types.LambdaType, functools.partial)):
        return (
            "Pass a module-level function's dotted path and import it inside the task."
        )
    if serializer == "json":
        return (
            "The JSON serializer takes only str, int, float, bool, None, lists and dicts "
            "with str keys: convert the value (for example datetime.isoformat()) or set "
            "DBQUEUE_SERIALIZER = 'pickle'."
        )
    if isinstance(value, type(threading.Lock())):
        return "Locks belong to one process: create it inside the task."
    return "Pass plain data (ids, strings, numbers) and rebuild the object inside the task."


def _cannot(serializer: str) -> str:
    return "cannot be pickled" if serializer == "pickle" else "JSON cannot encode"


def _a(value: Any) -> str:
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    article = "an" if name.lstrip("_")[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"


def _short(func_path: str) -> str:
    return func_path.rpartition(".")[2]


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"
