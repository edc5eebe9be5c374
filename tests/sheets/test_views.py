from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from sheets.models import Sheet, SheetGrant


@pytest.fixture
def sheets(db) -> list[Sheet]:
    return [
        Sheet.objects.create(
            id=10 + i, name=f"Sheet {i}", row_count=i * 10, webhook_status="ENABLED"
        )
        for i in range(3)
    ]


def test_it_lists_only_the_sheets_granted_to_the_user_or_their_groups(client, alice, sheets):
    team = Group.objects.create(name="team")
    alice.groups.add(team)
    SheetGrant.objects.create(sheet=sheets[0], user=alice, role="view")
    SheetGrant.objects.create(sheet=sheets[1], group=team, role="edit")
    client.force_login(alice)
    response = client.get(reverse("sheets:index"))
    assert response.status_code == 200
    assert [s.name for s in response.context["sheets"]] == ["Sheet 0", "Sheet 1"]
    assert b"Sheet 2" not in response.content


def test_staff_see_every_sheet_in_a_constant_number_of_queries(
    client, staff, sheets, django_assert_max_num_queries
):
    client.force_login(staff)
    with django_assert_max_num_queries(4):
        response = client.get(reverse("sheets:index"))
    assert [s.name for s in response.context["sheets"]] == ["Sheet 0", "Sheet 1", "Sheet 2"]
    Sheet.objects.create(id=99, name="Sheet 9")
    with django_assert_max_num_queries(4):
        client.get(reverse("sheets:index"))


def test_a_user_without_sheets_sees_how_to_get_one(client, bob, sheets):
    client.force_login(bob)
    response = client.get(reverse("sheets:index"))
    assert b"No sheets have been shared with you yet" in response.content


def test_the_webhook_secret_is_never_shown_in_the_admin(client, staff, sheets):
    Sheet.objects.filter(pk=10).update(webhook_shared_secret="top-secret-value")
    client.force_login(staff)
    response = client.get(reverse("admin:sheets_sheet_change", args=[10]))
    assert response.status_code == 200
    assert b"top-secret-value" not in response.content
    assert b"Sheet 0" in response.content
