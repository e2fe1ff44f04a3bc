"""The task registry: which callables may run as tasks, and their defaults.

A worker only runs what the registry knows: functions decorated with
:func:`task` and the plain callables listed in ``DBQUEUE_TASKS``. A dotted path
stored in the database is never imported and called on its own say-so, so a
row or a schedule that names ``os.system`` is refused (see the security notes
in the README).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import inspect
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from asgiref.sync import async_to_sync
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import autodiscover_modules, import_string

from dbqueue import exceptions, retries
from dbqueue.conf import settings

if TYPE_CHECKING:
    from dbqueue import models

_tasks: dict[str, TaskFunction] = {}
_plain: dict[str, TaskFunction] = {}  # DBQUEUE_TASKS entries, by path
# Argument shapes each task remembers as binding to its signature, at most.
CALL_SHAPES_KEPT = 64
_discovered = False
_discover_lock = threading.Lock()


class TaskFunction:
    """A function registered with :func:`task`, carrying its enqueue defaults.

    Calling it runs the function in-process; ``enqueue()`` queues it.
    """

    # The serializer of this task's payloads when a call names none (None:
    # DBQUEUE_SERIALIZER). Adapters for JSON-only APIs, such as Django's
    # Tasks, set "json" so every row of theirs is JSON however it is made.
    serializer: str | None = None

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        save: bool | None = None,
        hook: str | Callable[..., Any] | None = None,
        on_orphan: str | None = None,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        discard_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
        backoff: float | retries.Backoff | None = None,
        backoff_max: float | None = None,
        jitter: bool = True,
        secret_args: tuple[str | int, ...] | list[str | int] = (),
    ) -> None:
        self.func = func
        self.retry_policy = retries.RetryPolicy.build(
            retry_on=retry_on,
            discard_on=discard_on,
            backoff=backoff,
            backoff_max=backoff_max,
            jitter=jitter,
        )
        self.path = callable_path(func)
        # Parameter names and positional indices whose values are hidden from
        # the admin, logs and error messages (see dbqueue.redaction).
        self.secret_args = _secret_args(func, secret_args)
        # (number of arguments, keyword names...) of calls seen to bind.
        self._calls_that_bind: set[tuple[Any, ...]] = set()
        self.defaults: dict[str, Any] = {
            key: value
            for key, value in {
                "task_name": name,
                "queue": queue,
                "priority": priority,
                "max_attempts": max_attempts,
                "timeout": timeout,
                "save": save,
                "hook": hook,
                "on_orphan": on_orphan,
            }.items()
            if value is not None
        }
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<TaskFunction {self.path}>"

    def run(
        self, task: models.Task, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Call the function for a claimed task row; subclasses may pass more (a context).

        An ``async def`` task runs to completion on an event loop of its own,
        as Django's own Tasks do, so the worker stays a plain process.
        """
        if inspect.iscoroutinefunction(self.func):
            return async_to_sync(self.func)(*args, **kwargs)
        return self.func(*args, **kwargs)

    def check_call(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        """Raise TypeError now for arguments the function can never accept.

        Otherwise the mistake, a misspelt option among them (it lands in the
        task's own keyword arguments), would surface in a worker, attempt
        after attempt, and end in the dead-letter queue.
        """
        signature = self._signature
        if signature is None:
            return  # nothing to check against (some builtins)
        # Whether a call binds depends only on how many arguments it passes
        # and which names, so each such shape is checked once.
        shape = (len(args), *kwargs)
        if shape in self._calls_that_bind:
            return
        try:
            signature.bind(*self.leading_arguments(), *args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"{self.path}() cannot be called with these arguments: {exc}."
            ) from None
        if len(self._calls_that_bind) < CALL_SHAPES_KEPT:
            self._calls_that_bind.add(shape)

    def leading_arguments(self) -> tuple[Any, ...]:
        """Placeholders for what run() passes before the call's own arguments."""
        return ()

    @functools.cached_property
    def _signature(self) -> inspect.Signature | None:
        # Read once per task function, not at every enqueue.
        try:
            return inspect.signature(self.func)
        except (TypeError, ValueError):
            return None

    def enqueue(self, *args: Any, **kwargs: Any) -> str:
        """Queue a call with this task's defaults; accepts async_task's options."""
        from dbqueue import api

        return api.async_task(self, *args, **kwargs)


@overload
def task(func: Callable[..., Any], /) -> TaskFunction: ...
@overload
def task(
    *,
    name: str | None = ...,
    queue: str | None = ...,
    priority: int | None = ...,
    max_attempts: int | None = ...,
    timeout: float | None = ...,
    save: bool | None = ...,
    hook: str | Callable[..., Any] | None = ...,
    on_orphan: str | None = ...,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = ...,
    discard_on: type[BaseException] | tuple[type[BaseException], ...] | None = ...,
    backoff: float | retries.Backoff | None = ...,
    backoff_max: float | None = ...,
    jitter: bool = ...,
    secret_args: tuple[str | int, ...] | list[str | int] = ...,
) -> Callable[[Callable[..., Any]], TaskFunction]: ...
def task(
    func: Callable[..., Any] | None = None, /, **defaults: Any
) -> TaskFunction | Callable[[Callable[..., Any]], TaskFunction]:
    """Register a module-level function as a task, with optional enqueue defaults.

    Use bare (``@task``) or with options (``@task(queue="emails", max_attempts=5)``).
    The enqueue defaults are those of async_task(); the retry options
    (`retry_on`, `discard_on`, `backoff`, `backoff_max`, `jitter`) are the
    worker's, see :class:`dbqueue.retries.RetryPolicy`. `secret_args` names
    the parameters (by name, or by position as an int) whose values the admin,
    the logs and error messages never show, see :mod:`dbqueue.redaction`.
    Raise TypeError if the function is not defined at module level, since a
    worker must be able to import it by its dotted path.
    """

    def decorate(f: Callable[..., Any]) -> TaskFunction:
        return register(TaskFunction(f, **defaults))

    if func is not None:
        return decorate(func)
    return decorate


def register(registered: TaskFunction) -> TaskFunction:
    """Add a task under its path; used by @task and by adapters such as the Django Tasks backend."""
    _tasks[registered.path] = registered
    return registered


def registered(path: str) -> TaskFunction | None:
    """Return the task registered under `path`, or None; never imports or discovers anything."""
    return _tasks.get(path)


def declared(path: str) -> TaskFunction | None:
    """Return the task registered under `path` after discovering apps' tasks modules, or None.

    Unlike resolve(), never imports the module a path names, so it is safe
    for a path read from an unverified row (the admin, redaction).
    """
    if path not in _tasks:
        _discover()
    return _tasks.get(path)


def callable_path(func: Callable[..., Any]) -> str:
    """Return the dotted path a worker imports `func` by.

    Raise TypeError for lambdas, nested functions and other callables that have
    no importable path.
    """
    if isinstance(func, TaskFunction):
        return func.path
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise TypeError(
            f"{func!r} cannot be a task: a worker imports tasks by dotted path, so "
            "define the function at module level (not a lambda, a nested function or in __main__)."
        )
    return f"{module}.{qualname}"


def resolve(func_or_path: str | Callable[..., Any]) -> TaskFunction:
    """Return the registered task for a callable or its dotted path.

    Raise TaskNotFound if nothing registered answers to it, naming the path and
    the closest registered paths.
    """
    if isinstance(func_or_path, TaskFunction):
        return func_or_path
    if callable(func_or_path):
        path = callable_path(func_or_path)
    elif isinstance(func_or_path, str):
        path = func_or_path
    else:
        raise TypeError(
            f"A task is a function or its dotted path, got {type(func_or_path).__name__} {func_or_path!r}."
        )
    found = _lookup(path)
    if found is None:
        raise exceptions.TaskNotFound(_not_found_message(path))
    return found


def registered_paths() -> list[str]:
    """Return the dotted paths of every known task, sorted."""
    _discover()
    return sorted(set(_tasks) | set(settings.TASKS))


def import_all() -> None:
    """Import every app's tasks module and the DBQUEUE_TASKS callables now.

    The cluster's supervisor calls this before it forks, so that the
    workers share these modules' memory with it instead of each importing
    its own copy on its first task. A DBQUEUE_TASKS entry that does not
    import is left for the worker to report when a task names it.
    """
    _discover()
    for path in settings.TASKS:
        with contextlib.suppress(exceptions.TaskNotFound):
            _plain_callable(path)


def _lookup(path: str) -> TaskFunction | None:
    if path in _tasks:
        return _tasks[path]
    if path in settings.TASKS:
        return _plain_callable(path)
    _discover()
    if path in _tasks:
        return _tasks[path]
    # The task may live outside an app's tasks module: importing its module
    # runs the @task decorators. Only paths a developer wrote or a payload
    # whose signature verified reach this point.
    module_path = path.rpartition(".")[0]
    if module_path.startswith("."):
        return None  # relative: importlib raises ValueError or TypeError for it
    if module_path:
        try:
            importlib.import_module(module_path)
        except ImportError:
            return None
    return _tasks.get(path)


def _secret_args(
    func: Callable[..., Any], given: tuple[str | int, ...] | list[str | int]
) -> tuple[str | int, ...]:
    """Check @task's secret_args: names of parameters and non-negative positions.

    A name the function cannot receive is most likely a typo that would leave
    a secret shown, so it is an error rather than silently ignored.
    """
    if isinstance(given, (str, int)) or not isinstance(given, (tuple, list)):
        raise TypeError(
            f"secret_args must be a tuple of parameter names and positions, got {given!r}."
        )
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        names = None  # a callable without a signature: any name may be right
    else:
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
        names = (
            None
            if takes_any
            else {p.name for p in parameters if p.kind is not p.POSITIONAL_ONLY}
        )
    for item in given:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise TypeError(
                f"secret_args holds parameter names (str) and positions (int), got {item!r}."
            )
        if isinstance(item, int) and item < 0:
            raise ValueError(f"secret_args positions count from 0, got {item}.")
        if isinstance(item, str) and names is not None and item not in names:
            raise ValueError(
                f"secret_args names {item!r}, which {callable_path(func)} has no parameter for."
            )
    return tuple(given)


def _plain_callable(path: str) -> TaskFunction:
    """The TaskFunction of a DBQUEUE_TASKS entry, made once per path.

    Kept, like a decorated task, so that what a task remembers (its checked
    argument shapes, enqueue's checked options keyed on it) holds for these
    too; forgotten when a setting changes.
    """
    registered = _plain.get(path)
    if registered is None:
        registered = _plain[path] = _wrap_plain_callable(path)
    return registered


def _wrap_plain_callable(path: str) -> TaskFunction:
    try:
        target = import_string(path)
    except ImportError as exc:
        raise exceptions.TaskNotFound(
            f"{path!r} is listed in DBQUEUE_TASKS but cannot be imported: {exc}"
        ) from exc
    if not callable(target):
        raise exceptions.TaskNotFound(
            f"{path!r} is listed in DBQUEUE_TASKS but is a {type(target).__name__}, not a function."
        )
    registered = TaskFunction(target)
    registered.path = path
    return registered


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    with _discover_lock:
        if not _discovered:
            autodiscover_modules("tasks")
            _discovered = True


def _not_found_message(path: str) -> str:
    try:
        target = None if path.startswith(".") else import_string(path)
    except ImportError:
        target = None
    if target is not None:
        if not callable(target):
            return f"{path!r} is a {type(target).__name__}, not a function, so it cannot be a task."
        kind = "a class" if inspect.isclass(target) else "a function"
        return (
            f"{path!r} is {kind} but not a registered task. Decorate it with "
            "@dbqueue.task, or add its path to DBQUEUE_TASKS to allow a plain callable."
        )
    message = f"No task is registered as {path!r}."
    close = difflib.get_close_matches(path, registered_paths(), n=1, cutoff=0.8)
    if close:
        message += f" Did you mean {close[0]!r}?"
    return (
        message + " Tasks are found by importing each installed app's tasks module; "
        "check that the function is decorated with @task."
    )


@receiver(setting_changed)
def _forget_plain_callables(**kwargs: Any) -> None:
    _plain.clear()
