"""How the jobs pages show durations, dollars and cell values."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as a person reads them: "45 s", "3 min 5 s", "2 h 10 min"; "—" when unknown."""
    if seconds is None or seconds == "":
        return "—"
    total = round(float(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def usd(amount) -> str:
    """Dollars with enough places to show a small job's cost (four, or more below a cent)."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return "—"
    if value == 0:
        return "$0.00"
    places = 2 if abs(value) >= 1 else 4 if abs(value) >= Decimal("0.0001") else 6
    return f"${value:,.{places}f}"


@register.filter
def cell_value(value) -> str:
    """A JobRow's output or old value as the grid would show it."""
    if value is None or value == "":
        return "—"
    if value is True:
        return "✓"
    if value is False:
        return "☐"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@register.filter
def status_label(status: str) -> str:
    """ "completed_with_errors" → "completed with errors"."""
    return str(status).replace("_", " ")
