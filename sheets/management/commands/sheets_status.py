from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from sheets.models import Sheet


class Command(BaseCommand):
    help = "Show each mirrored sheet's version, rows, last sync and webhook status (no API calls)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="print a JSON list")

    def handle(self, *args, as_json: bool, **options) -> None:
        sheets = Sheet.objects.order_by("name", "pk")
        if as_json:
            self.stdout.write(json.dumps([_as_dict(s) for s in sheets]))
            return
        if not sheets:
            self.stdout.write("No sheets are mirrored yet: run `manage.py sync_sheets --all`.")
            return
        for s in sheets:
            synced = s.synced_at.isoformat(timespec="seconds") if s.synced_at else "never"
            self.stdout.write(
                f"{s.pk}  {s.name}  v{s.version if s.version is not None else '-'}  "
                f"{s.row_count} rows  synced {synced} ({s.get_sync_state_display()}"
                f"{': ' + s.sync_outcome if s.sync_outcome else ''})  "
                f"webhook {s.webhook_status or 'none'}"
            )


def _as_dict(sheet: Sheet) -> dict:
    return {
        "id": sheet.pk,
        "name": sheet.name,
        "version": sheet.version,
        "rows": sheet.row_count,
        "synced_at": sheet.synced_at.isoformat() if sheet.synced_at else None,
        "sync_state": sheet.sync_state,
        "sync_outcome": sheet.sync_outcome,
        "webhook_status": sheet.webhook_status or None,
    }
