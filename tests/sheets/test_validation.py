from __future__ import annotations

import pytest

from sheets.models import Column
from sheets.validation import CellInvalid, Formula, cell_value_parse


def column(type_: str = "TEXT_NUMBER", **fields) -> Column:
    return Column(
        id=1, sheet_id=1, index=0, title=fields.pop("title", "Field"), type=type_, **fields
    )


def invalid(col: Column, text: str) -> str:
    with pytest.raises(CellInvalid) as caught:
        cell_value_parse(column=col, text=text)
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("-3.5", -3.5),
        ("0", 0),
        ("007", "007"),
        ("1,5", "1,5"),
        ("12 apples", "12 apples"),
        ("  spaced out ", "  spaced out "),
        ("", None),
        ("   ", None),
        ("12345678901234567890", 12345678901234567890.0),
    ],
)
def test_text_number_keeps_numbers_as_numbers_and_codes_as_typed(text, value):
    parsed = cell_value_parse(column=column(), text=text)
    assert parsed == value
    assert type(parsed) is type(value)


def test_text_longer_than_smartsheet_allows_is_refused_with_the_limit():
    assert "at most 4,000 characters" in invalid(column(), "x" * 4001)
    assert cell_value_parse(column=column(), text="x" * 4000) == "x" * 4000


def test_a_formula_is_kept_as_formula_text():
    assert cell_value_parse(column=column(), text="=SUM([Cost]:[Cost])") == Formula(
        "=SUM([Cost]:[Cost])"
    )
    assert "Write a formula" in invalid(column(), "=")


@pytest.mark.parametrize("text", ["2026-02-30", "30/11/2026", "tomorrow", "2026-1-5"])
def test_a_bad_date_says_how_to_write_one(text):
    assert invalid(column("DATE"), text).startswith("Enter a date like 2026-11-30")


def test_a_good_date_is_sent_as_iso_text():
    assert cell_value_parse(column=column("DATE"), text=" 2026-11-30 ") == "2026-11-30"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("Yes", True), ("false", False)])
def test_checkbox_takes_true_or_false(text, value):
    assert cell_value_parse(column=column("CHECKBOX"), text=text) is value


def test_checkbox_refuses_anything_else():
    assert "true or false" in invalid(column("CHECKBOX"), "maybe")


def test_a_restricted_picklist_takes_only_its_options():
    status = column("PICKLIST", title="Status", options=["Open", "Done"], validation=True)
    assert cell_value_parse(column=status, text="Done") == "Done"
    message = invalid(status, "Later")
    assert "“Later” is not an option of “Status”" in message
    assert "“Open”, “Done”" in message


def test_an_unrestricted_picklist_takes_free_text_as_smartsheet_does():
    status = column("PICKLIST", options=["Open", "Done"], validation=False)
    assert cell_value_parse(column=status, text="Later") == "Later"


def test_a_restricted_multi_picklist_checks_every_option():
    tags = column("MULTI_PICKLIST", title="Tags", options=["a", "b"], validation=True)
    assert cell_value_parse(column=tags, text="a, b") == ["a", "b"]
    assert "“c” is not an option" in invalid(tags, "a, c")


def test_a_contact_needs_an_email():
    assert cell_value_parse(column=column("CONTACT_LIST"), text="pat@example.com") == (
        "pat@example.com"
    )
    assert "email address" in invalid(column("CONTACT_LIST"), "Pat")


def test_locked_and_system_columns_are_read_only():
    assert "locked in Smartsheet" in invalid(column(locked=True, title="Budget"), "1")
    for system in ("CREATED_DATE", "MODIFIED_DATE", "CREATED_BY", "MODIFIED_BY", "AUTO_NUMBER"):
        message = invalid(column(system_column_type=system), "1")
        assert "filled in by Smartsheet" in message


def test_several_contacts_are_emails_separated_by_commas():
    people = column("MULTI_CONTACT_LIST")
    assert cell_value_parse(column=people, text="a@x.io, b@x.io") == ["a@x.io", "b@x.io"]
    assert "“Pat” is not an email address" in invalid(people, "a@x.io, Pat")
