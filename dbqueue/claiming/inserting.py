"""Writing new task rows: the enqueue side of the queue, one statement per task.

Enqueue is the write a project makes most often, usually inside a web
request, so it costs what the database's own INSERT costs and little more:

- The INSERT is compiled once per database by Django's own compiler and kept;
  ``Model.save()`` would compile it again for every task. Each value still
  goes through its field's ``get_db_prep_save()``, so what is stored is what
  ``save(force_insert=True)`` stores, on every vendor.
- The fields a new task leaves at a constant default (queued, no attempt,
  no result, no lease) are written into a one-row INSERT as literals, so
  a plain call sends 7 parameters, not 28. On PostgreSQL with psycopg 3 they
  are sent apart from the SQL, whose text then stays the same from task to
  task and is prepared where the connection's ``prepare_threshold`` allows
  (see :func:`dbqueue.claiming.postgresql.execute_bound`).
- On PostgreSQL the NOTIFY that wakes idle workers (see
  :mod:`dbqueue.claiming.listen`) rides in the same statement. Sent as a
  statement of its own, outside a transaction, it was a second commit.
- A batch (``enqueue_many``) is streamed with COPY on PostgreSQL, and goes
  in multi-row INSERTs elsewhere, all in the caller's transaction or one of
  its own.

``Task``'s ``pre_save``/``post_save`` signals are not sent, as with
``bulk_create()``; dbqueue's own ``task_enqueuing``/``task_enqueued`` are.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.db.models.sql import InsertQuery
from django.utils import timezone

from dbqueue import models
from dbqueue.claiming import listen, postgresql

# Rows per INSERT statement of a batch at most (fewer where the vendor limits
# the parameters of one statement, as SQLite does): a statement this size
# stays under MySQL's max_allowed_packet.
BATCH_ROWS = 1000


@dataclasses.dataclass(frozen=True)
class Statement:
    """An INSERT of Task rows compiled for one database, with its fields in order."""

    fields: tuple[Field[Any, Any], ...]
    head: str  # INSERT INTO … (columns) VALUES
    row: str  # (%s, %s, …): one row's placeholders
    copy: str  # COPY … (columns) FROM STDIN, for PostgreSQL
    # The columns' PostgreSQL type names, for a binary COPY; empty where a
    # type is one the driver does not know, and COPY then goes as text.
    copy_types: tuple[str, ...]
    # Reads every field's value off a task, in order, in one call.
    read: Callable[[models.Task], tuple[Any, ...]]
    # The same off a task's __dict__, which skips looking for a descriptor
    # on the class for each of the 28 names: half the cost for a new task,
    # whose fields are all in its __dict__ (a deferred one is not).
    read_dict: Callable[[dict[str, Any]], tuple[Any, ...]]
    # (position, get_db_prep_save) of each field whose value the driver
    # cannot take as it is.
    prepare: tuple[tuple[int, Callable[..., Any]], ...]
    # (position, value, SQL literal) of each field whose default is a
    # constant that can be written into the SQL itself.
    constants: tuple[tuple[int, Any, str], ...] = ()
    # The constant fields' values off a row read by `read`, and their defaults.
    pick_constants: Callable[[tuple[Any, ...]], tuple[Any, ...]] = tuple
    defaults: tuple[Any, ...] = ()
    # The one-row INSERT for each shape of task (which fields are at their
    # constant default), built when first needed.
    shapes: dict[tuple[bool, ...], Shape] = dataclasses.field(default_factory=dict)

    def _read(self, task: models.Task) -> tuple[Any, ...]:
        try:
            return self.read_dict(task.__dict__)
        except KeyError:  # a deferred field, which reading the attribute loads
            return self.read(task)

    def sql(self, rows: int) -> str:
        return f"{self.head} {', '.join([self.row] * rows)}"

    def values(self, task: models.Task, connection: BaseDatabaseWrapper) -> list[Any]:
        row = list(self._read(task))
        for position, prepare in self.prepare:
            row[position] = prepare(row[position], connection)
        return row

    def one(
        self, task: models.Task, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        """The INSERT of one task, with its fields at a constant default written as literals.

        A new task leaves most of its fields at their defaults (no
        result, no error, no lease, no attempt yet). Written into the SQL,
        they are neither encoded by the driver nor sent and decoded for
        every task; the statement's text is still the same for every task of
        the same shape, so a server that prepares it plans it once.
        """
        row = self._read(task)
        # == and not identity: a validated value equal to the default is
        # the same value in SQL ("RETRY" and OnOrphan.RETRY, 1 and True).
        key = tuple(map(operator.eq, self.pick_constants(row), self.defaults))
        shape = self.shapes.get(key)
        if shape is None:
            if len(self.shapes) >= SHAPES_KEPT:
                self.shapes.clear()
            shape = self.shapes[key] = self._shape(key)
        params = [row[position] for position in shape.positions]
        for index, prepare in shape.prepare:
            params[index] = prepare(params[index], connection)
        return shape.sql, params

    def _shape(self, key: tuple[bool, ...]) -> Shape:
        literal = {
            position: sql
            for (position, _, sql), constant in zip(self.constants, key, strict=True)
            if constant
        }
        # The text around each field's %s, which may wrap it in a cast.
        around = self.row.split("%s")
        row = around[0] + "".join(
            literal.get(position, "%s") + after
            for position, after in enumerate(around[1:])
        )
        positions = [p for p in range(len(self.fields)) if p not in literal]
        prepare = dict(self.prepare)
        return Shape(
            sql=f"{self.head} {row}",
            positions=tuple(positions),
            prepare=tuple(
                (index, prepare[position])
                for index, position in enumerate(positions)
                if position in prepare
            ),
        )


@dataclasses.dataclass(frozen=True)
class Shape:
    """A one-row INSERT with some fields written as literals, and where the rest come from."""

    sql: str
    positions: tuple[int, ...]  # the row's positions that are parameters, in order
    prepare: tuple[tuple[int, Callable[..., Any]], ...]  # by index among the parameters


# Shapes of one-row INSERT kept at most: a shape is a set of fields left at
# their default, and a project's calls make a handful.
SHAPES_KEPT = 64


def insert(task: models.Task, *, using: str) -> None:
    """INSERT one new task; on PostgreSQL its NOTIFY goes in the same statement."""
    connection = connections[using]
    sql, params = _statement(connection).one(task, connection)
    if connection.vendor == "postgresql":
        sql, params = listen.with_notify(
            sql, params, listen.notices([(task.queue, task.run_after)], timezone.now())
        )
        postgresql.execute_bound(connection, sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    _mark_stored(task, using)


def insert_many(tasks: Iterable[models.Task], *, using: str) -> list[models.Task]:
    """INSERT new tasks in as few statements as the vendor allows, in one transaction; return them.

    On PostgreSQL the rows are streamed with COPY, and idle workers hear of
    each queue's earliest task. Where streams() says so, `tasks` may be an
    iterator that builds each task as COPY asks for its row: the server
    then stores the first rows while the rest are being built. An error
    raised by the iterator undoes the rows written before it, in a
    savepoint when the caller has a transaction open, and leaves that
    transaction usable. Elsewhere an iterator is read to the end first.
    """
    connection = connections[using]
    statement = _statement(connection)
    streamed = not isinstance(tasks, Sequence)
    stored: list[models.Task] = []
    with transaction.atomic(using=using, savepoint=streamed):
        if streams(using):

            def rows() -> Iterator[list[Any]]:
                for task in tasks:
                    stored.append(task)
                    yield statement.values(task, connection)

            postgresql.copy_rows(
                connection, statement.copy, rows(), statement.copy_types
            )
        else:
            stored = list(tasks)
            _insert_rows(connection, statement, stored)
        if connection.vendor == "postgresql":
            due = [(task.queue, task.run_after) for task in stored]
            listen.notify(connection, listen.notices(due, timezone.now()))
    for task in stored:
        _mark_stored(task, using)
    return stored


def streams(using: str) -> bool:
    """Tell whether insert_many() on this database writes rows while its iterator builds them."""
    connection = connections[using]
    return connection.vendor == "postgresql" and postgresql.can_copy(connection)


def _insert_rows(
    connection: BaseDatabaseWrapper,
    statement: Statement,
    tasks: Sequence[models.Task],
) -> None:
    size = max(
        1, min(BATCH_ROWS, connection.ops.bulk_batch_size(statement.fields, tasks))
    )
    with connection.cursor() as cursor:
        for start in range(0, len(tasks), size):
            chunk = tasks[start : start + size]
            sql = statement.sql(len(chunk))
            params = [
                value for task in chunk for value in statement.values(task, connection)
            ]
            cursor.execute(sql, params)


def _mark_stored(task: models.Task, using: str) -> None:
    # What save() records on the instance: it is in the database now, and which.
    task._state.adding = False
    task._state.db = using


def _statement(connection: BaseDatabaseWrapper) -> Statement:
    key = (connection.alias, connection.vendor)
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = _compile(connection)
    return statement


def _compile(connection: BaseDatabaseWrapper) -> Statement:
    """Compile a one-row INSERT with Django's compiler and take it apart."""
    fields = tuple(models.Task._meta.local_concrete_fields)
    query = InsertQuery(models.Task)
    # A blank instance, not Task(): a project's post_init receivers would
    # hear of a task that never exists.
    blank = models.Task.__new__(models.Task)
    blank.__dict__.update({field.attname: None for field in fields})
    query.insert_values(fields, [blank])
    [(sql, _)] = query.get_compiler(connection=connection).as_sql()
    head, separator, row = sql.partition(" VALUES ")
    if not separator or row.count("%s") != len(fields):
        raise RuntimeError(f"Unexpected INSERT compiled for dbqueue_task: {sql}")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    copy = f"COPY {quote(models.Task._meta.db_table)} ({columns}) FROM STDIN"
    constants = tuple(
        (position, default, literal)
        for position, field in enumerate(fields)
        if (constant := _constant_default(field)) is not None
        for default, literal in [constant]
    )
    return Statement(
        fields=fields,
        head=f"{head} VALUES",
        row=row,
        copy=copy,
        copy_types=postgresql.copy_types(connection, fields)
        if connection.vendor == "postgresql"
        else (),
        read=operator.attrgetter(*(field.attname for field in fields)),
        read_dict=operator.itemgetter(*(field.attname for field in fields)),
        prepare=tuple(
            (position, prepare)
            for position, field in enumerate(fields)
            if (prepare := _preparer(field, connection)) is not None
        ),
        constants=constants,
        pick_constants=_picker([position for position, _, _ in constants]),
        defaults=tuple(default for _, default, _ in constants),
    )


def _picker(positions: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """Return what takes these positions off a row, as a tuple even for one."""
    if len(positions) == 1:
        [position] = positions
        return lambda row: (row[position],)
    return operator.itemgetter(*positions)


# A string default written into SQL as it is: no quote or backslash to escape.
PLAIN_TEXT = re.compile(r"[A-Za-z0-9_. -]*")


def _constant_default(field: Field[Any, Any]) -> tuple[Any, str] | None:
    """(default, SQL literal) for a field whose default every vendor reads the same as a literal."""
    if field.primary_key:
        return None
    if field.has_default():
        default = field.default() if callable(field.default) else field.default
    elif field.null:
        default = None
    else:  # every task gives its own value
        return None
    if default is None:
        return default, "NULL"
    if isinstance(default, bool):
        return default, "TRUE" if default else "FALSE"
    if type(default) is int:
        return default, str(default)
    if isinstance(default, str) and PLAIN_TEXT.fullmatch(default):
        return default, f"'{str.__str__(default)}'"
    if field.get_internal_type() == "JSONField" and default in ([], {}):
        return default, f"'{json.dumps(default)}'"
    return None


# Fields whose get_db_prep_save() returns a value of the type dbqueue stores
# in them unchanged on PostgreSQL, whose driver takes str, int, float, bool,
# UUID and aware datetimes as they are. A row has 28 fields, and the
# calls cost more than a bulk enqueue's whole budget per task.
PASS_THROUGH_ON_POSTGRESQL = frozenset(
    {
        "BooleanField",
        "CharField",
        "DateTimeField",
        "FloatField",
        "IntegerField",
        "PositiveIntegerField",
        "SmallIntegerField",
        "TextField",
        "UUIDField",
    }
)


def _preparer(
    field: Field[Any, Any], connection: BaseDatabaseWrapper
) -> Callable[..., Any] | None:
    if (
        connection.vendor == "postgresql"
        and field.get_internal_type() in PASS_THROUGH_ON_POSTGRESQL
    ):
        return None
    if field.get_internal_type() == "JSONField":
        return _json_preparer(field, connection)
    return field.get_db_prep_save


def _json_preparer(
    field: Field[Any, Any], connection: BaseDatabaseWrapper
) -> Callable[..., Any]:
    """get_db_prep_save, with the new task's empty attempt log encoded once."""
    empty = _encoded_once(field.get_db_prep_save([], connection))

    def prepare(value: Any, connection: BaseDatabaseWrapper) -> Any:
        if type(value) is list and not value:
            return empty
        return field.get_db_prep_save(value, connection)

    return prepare


def _encoded_once(value: Any) -> Any:
    """psycopg 3's JSON wrapper for the same value, whose text is made once, not per row.

    Django hands psycopg a wrapper that runs json.dumps() each time the
    driver writes it: for the attempt log of every row of a bulk enqueue.
    Anything else (psycopg 2's adapter, a string) is returned as it is.
    """
    obj, dumps = getattr(value, "obj", None), getattr(value, "dumps", None)
    if obj is None or dumps is None:
        return value
    encoded = dumps(obj).encode()
    return type(value)(obj, dumps=lambda _: encoded)


_statements: dict[tuple[str, str], Statement] = {}
