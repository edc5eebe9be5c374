"""The "new job" form: what a person fills in, checked field by field, turned into a JobSpec.

The service (`job_plan`) checks the whole spec again; the form only attaches the mistakes a
person makes in one field (an unknown column reference, a filter that cannot apply) to that field.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.conf import settings

from jobs.models import Job
from jobs.prompts import TemplateInvalid, template_columns
from jobs.services import JobSpec, deployment_choices
from jobs.services.plan import FILLABLE_TYPES
from sheets.grid import FilterInvalid, filter_parse
from sheets.models import Column, Sheet
from sheets.validation import column_read_only_reason

NEW_COLUMN = "new"
TYPE_LABELS = {
    "TEXT_NUMBER": "Text or number",
    "PICKLIST": "Dropdown",
    "MULTI_PICKLIST": "Dropdown, several values",
    "CHECKBOX": "Checkbox",
    "DATE": "Date",
}
_ROW_IDS = re.compile(r"^\d+(,\d+)*$")


class JobForm(forms.Form):
    name = forms.CharField(
        max_length=200, required=False, help_text="Optional; “Fill <column>” by default."
    )
    template = forms.CharField(
        label="What to ask for each row",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "true"}),
        help_text="Reference columns as {{Column Title}}; click a column below to insert it.",
    )
    target = forms.ChoiceField(
        label="Fill column", error_messages={"required": "Choose the column to fill."}
    )
    new_column_title = forms.CharField(label="New column title", max_length=255, required=False)
    new_column_type = forms.ChoiceField(
        label="New column type",
        choices=[(t, TYPE_LABELS[t]) for t in FILLABLE_TYPES],
        initial="TEXT_NUMBER",
        required=False,
    )
    new_column_options = forms.CharField(
        label="Dropdown options",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One per line.",
    )
    selection = forms.ChoiceField(label="Rows", widget=forms.RadioSelect, initial=Job.Selection.ALL)
    filter_text = forms.CharField(
        label="Filter",
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "Channel = Email"}),
    )
    rows = forms.CharField(widget=forms.HiddenInput, required=False)
    batch_size = forms.IntegerField(
        min_value=1,
        max_value=500,
        initial=100,
        help_text="Rows written to Smartsheet per request (1 to 500).",
    )
    priority = forms.ChoiceField(choices=Job.Priority.choices, initial=Job.Priority.NORMAL)
    deployment = forms.ChoiceField()
    budget = forms.DecimalField(
        label="Budget cap (USD)",
        required=False,
        max_digits=14,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        help_text="Optional: the job pauses before it spends more.",
    )

    def __init__(self, *args, sheet: Sheet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sheet = sheet
        self.columns = list(Column.objects.filter(sheet=sheet).order_by("index"))
        self.fillable = [
            c for c in self.columns if c.type in FILLABLE_TYPES and not column_read_only_reason(c)
        ]
        # No column is preselected: filling one overwrites it, so it is a choice made on purpose.
        self.fields["target"].choices = [
            ("", "Choose the column to fill…"),
            *((str(c.pk), f"{c.title} ({TYPE_LABELS[c.type].lower()})") for c in self.fillable),
            (NEW_COLUMN, "A new column…"),
        ]
        selections = Job.Selection.choices
        if not self._row_ids_given():
            selections = [s for s in selections if s[0] != Job.Selection.ROWS]
        self.fields["selection"].choices = selections
        self.fields["deployment"].choices = [(d, d) for d in deployment_choices()]
        self.fields["deployment"].initial = settings.AZURE_OPENAI_DEPLOYMENT

    def _row_ids_given(self) -> bool:
        return bool(self.selected_count)

    @property
    def selected_count(self) -> int:
        """How many rows the grid passed in `rows=` (for the label)."""
        raw = (self.data.get("rows") if self.is_bound else self.initial.get("rows")) or ""
        return len([pk for pk in raw.split(",") if pk.strip()])

    def full_clean(self) -> None:
        super().full_clean()
        # Pico outlines invalid inputs in red; screen readers hear the message with the field.
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": f"{self[name].auto_id}-error"}
                )

    def clean_template(self) -> str:
        template = self.cleaned_data["template"]
        try:
            template_columns(template=template, columns=self.columns)
        except TemplateInvalid as exc:
            raise forms.ValidationError(exc.message) from exc
        return template

    def clean_rows(self) -> tuple[int, ...]:
        raw = (self.cleaned_data.get("rows") or "").replace(" ", "")
        if raw and not _ROW_IDS.match(raw):
            raise forms.ValidationError("The selected rows could not be read; select them again.")
        return tuple(int(pk) for pk in raw.split(",")) if raw else ()

    def clean(self) -> dict:
        data = super().clean()
        if data.get("target") == NEW_COLUMN and not (data.get("new_column_title") or "").strip():
            self.add_error("new_column_title", "Give the new column a title.")
        dropdown = data.get("new_column_type") in ("PICKLIST", "MULTI_PICKLIST")
        if data.get("target") == NEW_COLUMN and dropdown and not self._options(data):
            self.add_error(
                "new_column_options", "A dropdown column needs its options, one per line."
            )
        if data.get("selection") == Job.Selection.FILTER:
            text = (data.get("filter_text") or "").strip()
            try:
                condition = filter_parse(text=text, columns=self.columns)
            except FilterInvalid as exc:
                self.add_error("filter_text", str(exc))
            else:
                if condition is None:
                    self.add_error(
                        "filter_text", "Write a filter like “Channel = Email”, or choose all rows."
                    )
        return data

    @staticmethod
    def _options(data: dict) -> tuple[str, ...]:
        lines = (data.get("new_column_options") or "").splitlines()
        return tuple(line.strip() for line in lines if line.strip())

    def spec(self) -> JobSpec:
        """The JobSpec of a valid form."""
        data = self.cleaned_data
        new = data["target"] == NEW_COLUMN
        selection, filter_text = data["selection"], (data.get("filter_text") or "").strip()
        return JobSpec(
            sheet_id=self.sheet.pk,
            name=data.get("name") or "",
            template=data["template"],
            target_column_id=None if new else int(data["target"]),
            new_column_title=(data.get("new_column_title") or "").strip() if new else "",
            new_column_type=(new and data.get("new_column_type")) or "TEXT_NUMBER",
            new_column_options=self._options(data) if new else (),
            selection=selection,
            filter_text=filter_text if selection == Job.Selection.FILTER else "",
            row_ids=data["rows"] if selection == Job.Selection.ROWS else (),
            deployment=data["deployment"],
            batch_size=data["batch_size"],
            priority=data["priority"],
            budget=data.get("budget"),
        )
