"""A faster end to a transactional test on PostgreSQL, leaving the database as Django's flush would.

Django ends each `django_db(transaction=True)` test with `manage.py flush`: one TRUNCATE of all
~24 tables (PostgreSQL gives each a new file and syncs them, after waiting for an ACCESS EXCLUSIVE
lock on every one: 0.2 to 0.6 s a test), then post_migrate to create the content types and
permissions again. Most of those tests leave a handful of rows in a few tables.

`flush` reaches the same end state with less: one query finds the tables that hold rows, DELETE
empties them in one transaction (foreign keys deferred, so order does not matter), and the content
types and permissions, which post_migrate would write back as they were, are left alone while they
are exactly as the last full flush left them (a fingerprint of both tables). When they differ, or a
table holds many rows (DELETE then costs more than TRUNCATE), Django's own flush runs; so it does
for a test that sets `available_apps` or a serialized rollback, and on other databases.
"""

from __future__ import annotations

import pytest

# More rows than this in any table: TRUNCATE (a constant cost) beats DELETE (a per-row one).
DELETE_AT_MOST = 2000

SEEDED = ("django_content_type", "auth_permission")

_baseline: dict[str, str] = {}  # db alias -> fingerprint of SEEDED right after a full flush


def _fingerprint(cursor, quote) -> str:
    parts = []
    for table in SEEDED:
        rows = "coalesce(string_agg(t::text, '|' ORDER BY t.id), '')"
        cursor.execute(f"SELECT md5({rows}) FROM {quote(table)} t")
        parts.append(cursor.fetchone()[0])
    return ":".join(parts)


def full_flush(alias: str) -> None:
    """Django's flush as TransactionTestCase runs it (no available_apps, no serialized data)."""
    from django.core.management import call_command
    from django.db import connections

    _baseline.pop(alias, None)
    call_command(
        "flush",
        verbosity=0,
        interactive=False,
        database=alias,
        reset_sequences=False,
        allow_cascade=False,
        inhibit_post_migrate=False,
    )
    connection = connections[alias]
    with connection.cursor() as cursor:
        _baseline[alias] = _fingerprint(cursor, connection.ops.quote_name)


def flush(alias: str) -> str:
    """Empty the PostgreSQL database `alias` as Django's flush would; says how ("full",
    "delete" or "clean")."""
    from django.db import connections, transaction

    if alias not in _baseline:
        full_flush(alias)
        return "full"
    connection = connections[alias]
    quote = connection.ops.quote_name
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    limit = DELETE_AT_MOST + 1
    probe = " UNION ALL ".join(
        f"SELECT %s, (SELECT count(*) FROM (SELECT 1 FROM {quote(table)} LIMIT {limit}) s)"
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(probe, tables)
        filled = {table: rows for table, rows in cursor.fetchall() if rows}
        if any(rows > DELETE_AT_MOST for rows in filled.values()) or (
            any(table in filled for table in SEEDED)
            and _fingerprint(cursor, quote) != _baseline[alias]
        ):
            full_flush(alias)
            return "full"
        doomed = [table for table in filled if table not in SEEDED]
        if not doomed:
            return "clean"
        with transaction.atomic(using=alias):
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            for table in doomed:
                cursor.execute(f"DELETE FROM {quote(table)}")
    return "delete"


def _install() -> None:
    from django.db import connections
    from django.test import TransactionTestCase

    django_teardown = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):
        aliases = self._databases_names(include_mirrors=False)
        if (
            self.available_apps is not None
            or self.serialized_rollback
            or any(connections[alias].vendor != "postgresql" for alias in aliases)
        ):
            django_teardown(self)
            return
        for alias in aliases:
            flush(alias)

    TransactionTestCase._fixture_teardown = _fixture_teardown


@pytest.hookimpl(trylast=True)
def pytest_configure(config) -> None:
    # pytest-django has set Django up by now (in its own pytest_load_initial_conftests).
    _install()
