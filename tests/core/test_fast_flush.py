"""The suite's faster flush (tests/plugins/fast_flush.py) leaves what Django's flush leaves."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import TransactionTestCase

from tests.plugins import fast_flush

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the fast flush is for PostgreSQL only"
    ),
]


def state() -> dict:
    """Every table's row count, and the content types and permissions by their natural keys."""
    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True):
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return {
        "counts": counts,
        "content_types": sorted(ContentType.objects.values_list("app_label", "model")),
        "permissions": sorted(
            Permission.objects.values_list("content_type__app_label", "codename", "name")
        ),
    }


@pytest.fixture
def after_django_flush() -> dict:
    fast_flush.full_flush("default")
    expected = state()
    assert expected["permissions"] and expected["content_types"]
    assert all(
        rows == 0 for table, rows in expected["counts"].items() if table not in fast_flush.SEEDED
    )
    return expected


def test_the_suite_ends_transactional_tests_with_it():
    assert TransactionTestCase._fixture_teardown.__module__ == fast_flush.__name__


def test_rows_the_test_wrote_are_deleted_and_the_seed_is_kept(after_django_flush, alice, bob):
    from sheets.models import Sheet, SheetGrant

    sheet = Sheet.objects.create(id=1, name="One")  # rows that refer to rows: FKs in the way
    SheetGrant.objects.create(sheet=sheet, user=alice)
    SheetGrant.objects.create(sheet=sheet, user=bob, role=SheetGrant.Role.VIEW)
    ids = sorted(ContentType.objects.values_list("id", flat=True))
    assert state() != after_django_flush

    assert fast_flush.flush("default") == "delete"
    assert state() == after_django_flush
    assert sorted(ContentType.objects.values_list("id", flat=True)) == ids  # untouched

    assert fast_flush.flush("default") == "clean"
    assert state() == after_django_flush


def test_a_changed_seed_gets_djangos_flush(after_django_flush, alice):
    extra = Permission.objects.create(
        codename="extra", name="Extra", content_type=ContentType.objects.first()
    )
    assert fast_flush.flush("default") == "full"
    assert state() == after_django_flush
    assert not Permission.objects.filter(pk=extra.pk).exists()

    ContentType.objects.filter(app_label="sheets").delete()  # and their permissions
    assert fast_flush.flush("default") == "full"
    assert state() == after_django_flush


def test_many_rows_get_djangos_flush(after_django_flush, monkeypatch, django_user_model):
    monkeypatch.setattr(fast_flush, "DELETE_AT_MOST", 2)
    for name in ("a", "b", "c"):
        django_user_model.objects.create_user(name)
    assert fast_flush.flush("default") == "full"
    assert state() == after_django_flush
