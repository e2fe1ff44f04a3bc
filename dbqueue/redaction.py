"""Hiding secret task arguments from the admin, the logs and error messages.

A task's arguments are stored signed, not encrypted: whoever reads the
database reads them. What this module prevents is the second copy, in a log
line, an exception message or an admin page shown to an operator. A value is
secret when:

- the task declares it: ``@task(secret_args=("password", 0))`` names a
  parameter (whether the call passes it by keyword or by position) or a
  position (an int, counted from 0);
- or its name contains one of ``DBQUEUE_SECRET_ARGUMENT_NAMES`` (password,
  token, secret, api_key...), ignoring case, ``_`` and ``-``. These names
  apply to keyword arguments, to parameters bound by position, and to the
  keys of dicts nested in any argument (a config dict passed whole).

:func:`redact` never raises and never imports a module a path names: it runs
while logging, and on paths read from rows nobody has verified yet.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from dbqueue import registry
from dbqueue.conf import settings

REDACTED = "[redacted]"  # stands in for every hidden value
MAX_DEPTH = 4  # levels of nested dicts, lists and tuples searched for secret keys


def redact(
    func_path: str, args: Iterable[Any], kwargs: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return copies of a call's arguments with every secret value replaced by REDACTED.

    The originals are left untouched; values that hold no secret are the same
    objects, not copies.
    """
    args = tuple(args)
    kwargs = dict(kwargs)
    names = _project_names()
    found = _task(func_path)
    declared, positions = _declared(found)
    parameters = _positional_names(found, len(args))
    shown_args = []
    for index, value in enumerate(args):
        name = parameters[index] if index < len(parameters) else None
        if index in positions or (
            name is not None and _is_secret(name, declared, names)
        ):
            shown_args.append(REDACTED)
        else:
            shown_args.append(_scrub(value, names, 0))
    shown_kwargs: dict[str, Any] = {}
    for key, value in kwargs.items():
        if _is_secret(key, declared, names):
            shown_kwargs[key] = REDACTED
        else:
            shown_kwargs[key] = _scrub(value, names, 0)
    return tuple(shown_args), shown_kwargs


def _is_secret(name: Any, declared: frozenset[str], names: tuple[str, ...]) -> bool:
    if not isinstance(name, str):
        return False
    folded = _fold(name)
    return name.casefold() in declared or any(secret in folded for secret in names)


def _fold(name: str) -> str:
    return name.casefold().replace("_", "").replace("-", "")


def _project_names() -> tuple[str, ...]:
    try:
        configured = settings.SECRET_ARGUMENT_NAMES
        if isinstance(configured, str):
            configured = (configured,)
        return tuple(
            _fold(name) for name in configured if isinstance(name, str) and name
        )
    except Exception:
        # A broken setting must not turn a log call into a crash; the system
        # check reports it. Fall back to the defaults rather than show all.
        return tuple(_fold(name) for name in type(settings).SECRET_ARGUMENT_NAMES)


def _declared(
    found: registry.TaskFunction | None,
) -> tuple[frozenset[str], frozenset[int]]:
    if found is None:
        return frozenset(), frozenset()
    secret = getattr(found, "secret_args", ())
    return (
        frozenset(item.casefold() for item in secret if isinstance(item, str)),
        frozenset(item for item in secret if isinstance(item, int)),
    )


def _positional_names(found: registry.TaskFunction | None, count: int) -> list[str]:
    """Name the parameters positional arguments bind to, so names also hide values passed by position."""
    if found is None or count == 0:
        return []
    try:
        parameters = inspect.signature(found.func).parameters.values()
    except (TypeError, ValueError):
        return []
    names = []
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            break
        if parameter.kind not in (
            parameter.POSITIONAL_ONLY,
            parameter.POSITIONAL_OR_KEYWORD,
        ):
            break
        names.append(parameter.name)
    return names


def _task(func_path: str) -> registry.TaskFunction | None:
    if not isinstance(func_path, str) or not func_path:
        return None
    try:
        return registry.declared(func_path)
    except Exception:
        return None


def _scrub(value: Any, names: tuple[str, ...], depth: int) -> Any:
    """Hide values under secret-looking keys of nested dicts; return `value` itself when none."""
    if depth >= MAX_DEPTH or not names:
        return value
    if isinstance(value, Mapping):
        try:
            items = list(value.items())
        except Exception:
            return value
        changed = False
        copy: dict[Any, Any] = {}
        for key, item in items:
            if _is_secret(key, frozenset(), names):
                copy[key] = REDACTED
                changed = True
            else:
                copy[key] = _scrub(item, names, depth + 1)
                changed = changed or copy[key] is not item
        return copy if changed else value
    if type(value) in (list, tuple):
        scrubbed = [_scrub(item, names, depth + 1) for item in value]
        if all(new is old for new, old in zip(scrubbed, value, strict=True)):
            return value
        return type(value)(scrubbed)
    return value
