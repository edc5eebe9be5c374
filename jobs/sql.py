"""One UPDATE for many rows, each with its own values: `UPDATE … FROM (VALUES …)`.

Django's bulk_update builds a CASE of one WHEN per row and field and resolves each as an
expression: for a flush's 1,000 mirror rows that is most of the flush's CPU. PostgreSQL and
SQLite (3.33+) both take a VALUES list joined on the primary key, with RETURNING (SQLite 3.35+).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Model


def rows_update(
    model: type[Model],
    rows: Sequence[tuple[int, Sequence[Any]]],
    fields: Sequence[str],
    *,
    where: str = "",
    where_params: Sequence[Any] = (),
    batch_size: int = 500,
) -> list[int]:
    """Set `fields` of each row (pk, values in the order of `fields`); the pks updated.

    `where` (SQL on the table's columns, `%s` for `where_params`) limits which rows change:
    one that no longer matches is left as it is and not returned.
    """
    if not rows:
        return []
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    pk = connection.ops.quote_name(meta.pk.column)
    concrete = [meta.get_field(name) for name in fields]
    columns = [connection.ops.quote_name(field.column) for field in concrete]
    postgres = connection.vendor == "postgresql"
    # PostgreSQL types a VALUES column from its first row: each is cast to its field's type.
    casts = [f"::{field.db_type(connection)}" if postgres else "" for field in concrete]
    assignments = ", ".join(
        f"{column} = v.c{i}{cast}"
        for i, (column, cast) in enumerate(zip(columns, casts, strict=True))
    )
    names = ", ".join(["pk", *(f"c{i}" for i in range(len(concrete)))])
    condition = f" AND ({where})" if where else ""
    updated: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            params: list[Any] = []
            for key, values in batch:
                params.append(key)
                params.extend(
                    field.get_db_prep_save(value, connection)
                    for field, value in zip(concrete, values, strict=True)
                )
            row_sql = "(" + ", ".join(["%s"] * (len(concrete) + 1)) + ")"
            first = "(%s::bigint" + ", %s" * len(concrete) + ")" if postgres else row_sql
            values_sql = ", ".join([first, *[row_sql] * (len(batch) - 1)])
            # Names come from the model's meta and `where` from our code; values are parameters.
            sql = (
                f"WITH v({names}) AS (VALUES {values_sql}) "  # noqa: S608
                f"UPDATE {table} SET {assignments} FROM v "
                f"WHERE {table}.{pk} = v.pk{condition} RETURNING {pk}"
            )
            cursor.execute(sql, [*params, *where_params])
            updated.extend(row[0] for row in cursor.fetchall())
    return updated
