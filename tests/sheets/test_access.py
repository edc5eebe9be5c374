from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from sheets.models import Sheet, SheetGrant
from sheets.selectors import sheet_role_for, sheets_visible_to


@pytest.fixture
def sheet(db) -> Sheet:
    return Sheet.objects.create(id=1, name="Budget")


def test_a_user_without_a_grant_has_no_role(sheet, alice):
    assert sheet_role_for(user=alice, sheet=sheet) is None
    assert list(sheets_visible_to(alice)) == []


def test_a_view_grant_lets_the_user_see_the_sheet_but_not_edit_it(sheet, alice):
    SheetGrant.objects.create(sheet=sheet, user=alice, role="view")
    assert sheet_role_for(user=alice, sheet=sheet) == "view"
    assert list(sheets_visible_to(alice)) == [sheet]


def test_the_strongest_of_own_and_group_grants_wins(sheet, alice):
    team = Group.objects.create(name="team")
    alice.groups.add(team)
    SheetGrant.objects.create(sheet=sheet, user=alice, role="view")
    SheetGrant.objects.create(sheet=sheet, group=team, role="edit")
    assert sheet_role_for(user=alice, sheet=sheet) == "edit"
    assert list(sheets_visible_to(alice)) == [sheet]


def test_staff_edit_every_sheet_without_a_grant(sheet, staff):
    assert sheet_role_for(user=staff, sheet=sheet) == "edit"


def test_a_grant_names_a_user_or_a_group_never_both(sheet, alice):
    team = Group.objects.create(name="team")
    grant = SheetGrant(sheet=sheet, user=alice, group=team, role="view")
    with pytest.raises(Exception, match="choose one"):
        grant.full_clean()


def test_the_admin_shows_the_grants_inline(client, staff, sheet, alice):
    SheetGrant.objects.create(sheet=sheet, user=alice, role="view")
    client.force_login(staff)
    response = client.get(f"/admin/sheets/sheet/{sheet.pk}/change/")
    assert response.status_code == 200
    assert b"alice" in response.content


@pytest.mark.django_db(transaction=True)
def test_grants_made_before_roles_existed_become_edit_grants(alice):
    before = [("sheets", "0003_receiver_nonces_and_sync_requests")]
    after = [("sheets", "0004_grid_grants_and_journal")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldSheet = old.get_model("sheets", "Sheet")
    team = old.get_model("auth", "Group").objects.create(name="team")
    sheet = OldSheet.objects.create(id=5, name="Old")
    sheet.granted_users.add(alice.pk)
    sheet.granted_groups.add(team)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    grants = (
        MigrationExecutor(connection)
        .loader.project_state(after)
        .apps.get_model("sheets", "SheetGrant")
    )
    assert set(grants.objects.values_list("user_id", "group_id", "role")) == {
        (alice.pk, None, "edit"),
        (None, team.pk, "edit"),
    }
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
