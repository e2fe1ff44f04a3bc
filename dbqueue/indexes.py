"""Index helpers for the queue tables."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.ddl_references import Statement
from django.db.models import Q


class PartialIndex(models.Index):
    """A partial index where the vendor has them, else a full index led by `fallback_prefix`.

    Claiming reads only QUEUED rows, so on PostgreSQL and SQLite the claim index
    covers only those and stays small however much history the table keeps.
    MySQL and MariaDB have no partial indexes: Django would skip the index there
    (with warning models.W037), so this class creates the same index with the
    status column first instead, which serves the same queries. The condition
    is kept out of Index.condition for that reason.
    """

    def __init__(
        self,
        *,
        fields: list[str],
        name: str,
        where: Q,
        fallback_prefix: tuple[str, ...] = (),
    ) -> None:
        self.where = where
        self.fallback_prefix = tuple(fallback_prefix)
        super().__init__(fields=fields, name=name)

    def deconstruct(self) -> Any:
        path, args, kwargs = super().deconstruct()
        kwargs.update(where=self.where, fallback_prefix=self.fallback_prefix)
        return path, args, kwargs

    def _for(self, schema_editor: BaseDatabaseSchemaEditor) -> models.Index:
        if schema_editor.connection.features.supports_partial_indexes:
            return models.Index(
                fields=self.fields, name=self.name, condition=self.where
            )
        return models.Index(
            fields=[*self.fallback_prefix, *self.fields], name=self.name
        )

    def create_sql(
        self,
        model: type[models.Model],
        schema_editor: BaseDatabaseSchemaEditor,
        using: str = "",
        **kwargs: Any,
    ) -> Statement:
        return self._for(schema_editor).create_sql(
            model, schema_editor, using=using, **kwargs
        )

    def remove_sql(
        self,
        model: type[models.Model],
        schema_editor: BaseDatabaseSchemaEditor,
        **kwargs: Any,
    ) -> str:
        return self._for(schema_editor).remove_sql(model, schema_editor, **kwargs)


class PartialUniqueConstraint(models.UniqueConstraint):
    """Unique among the rows where `where` holds, on the vendors with partial indexes.

    ``Task.unique_hold`` is NULL for nearly every task, and NULLs never
    collide, so an index of only the non-NULL values enforces the same rule
    while enqueueing, claiming and finishing a task without a key write
    nothing to it. Django would skip a conditional UniqueConstraint on MySQL
    and MariaDB (warning models.W036) and lose the rule there; this class
    keeps the condition out of UniqueConstraint.condition and builds a plain
    unique constraint on those vendors instead.
    """

    def __init__(self, *, fields: list[str], name: str, where: Q) -> None:
        self.where = where
        super().__init__(fields=fields, name=name)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PartialUniqueConstraint)
            and self.where == other.where
            and super().__eq__(other)
        )

    def deconstruct(self) -> Any:
        path, args, kwargs = super().deconstruct()
        kwargs["where"] = self.where
        return path, args, kwargs

    def _for(self, schema_editor: BaseDatabaseSchemaEditor) -> models.UniqueConstraint:
        partial = schema_editor.connection.features.supports_partial_indexes
        return models.UniqueConstraint(
            fields=list(self.fields),
            name=self.name,
            condition=self.where if partial else None,
        )

    # Typed as django-stubs types them; Django always passes both.
    def constraint_sql(self, model: Any, schema_editor: Any) -> str:
        return self._for(schema_editor).constraint_sql(model, schema_editor)

    def create_sql(self, model: Any, schema_editor: Any) -> str:
        return self._for(schema_editor).create_sql(model, schema_editor)

    def remove_sql(self, model: Any, schema_editor: Any) -> str:
        return self._for(schema_editor).remove_sql(model, schema_editor)
