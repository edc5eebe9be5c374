from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum
from smartsheet.exceptions import ApiError
from tqdm import tqdm

from sheets.client import SmartsheetUnavailable, api_calls_made, api_error_sentence
from sheets.models import Sheet
from sheets.sync import SheetNotFound, sheet_sync, sheets_discover, sheets_prune


class Command(BaseCommand):
    help = (
        "Bring the sheet mirror up to date: the given sheets, every mirrored sheet, or with "
        "--all every sheet the Smartsheet token can see. Unchanged sheets cost one small call."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("sheet_ids", nargs="*", type=int, metavar="SHEET_ID")
        parser.add_argument(
            "--all", action="store_true", help="discover and mirror every sheet the token sees"
        )
        parser.add_argument("--full", action="store_true", help="refetch every row")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="remove the sheets Smartsheet no longer has (or no longer shares) from the mirror",
        )

    def handle(
        self, *args, sheet_ids: list[int], all: bool, full: bool, prune: bool, **options
    ) -> None:
        if prune:
            for sheet in sheets_prune():
                self.stdout.write(f"Removed sheet {sheet.pk} ({sheet.name}): {sheet.sync_outcome}")
            if not (sheet_ids or all):
                return
        began, calls_before = time.monotonic(), api_calls_made()
        try:
            if all:
                sheets_discover()
            if sheet_ids:
                sheets_discover(sheet_ids=sheet_ids)
        except SheetNotFound as exc:
            raise CommandError(f"{exc} Nothing was stored.") from exc
        except SmartsheetUnavailable as exc:
            raise CommandError(f"Could not list the sheets to mirror: {exc}") from exc
        except ApiError as exc:
            raise CommandError(
                f"Could not list the sheets to mirror. {api_error_sentence(exc)}"
            ) from exc
        ids = sheet_ids or list(
            Sheet.objects.exclude(sync_state=Sheet.SyncState.GONE)
            .order_by("name")
            .values_list("pk", flat=True)
        )
        if not ids:
            raise CommandError("No sheets are mirrored yet: pass sheet ids, or --all.")

        added = updated = deleted = 0
        failures: list[str] = []
        for sheet_id in tqdm(ids, desc="Syncing sheets", unit="sheet", disable=None):
            try:
                # A person is waiting here, not a worker slot: wait for a sync already running.
                result = sheet_sync(sheet_id=sheet_id, full=full, wait=300)
            except SmartsheetUnavailable as exc:
                failures.append(f"sheet {sheet_id}: {exc}")
            except ApiError as exc:
                failures.append(f"sheet {sheet_id}: {api_error_sentence(exc)}")
                continue
            if result.kind in ("gone", "skipped"):
                outcome = Sheet.objects.filter(pk=sheet_id).values_list("sync_outcome", flat=True)
                failures.append(
                    f"sheet {sheet_id}: {outcome.first() or 'gone from Smartsheet'}"
                    if result.kind == "gone"
                    else f"sheet {sheet_id}: another sync kept it busy for 300 s; try again"
                )
                continue
            added += len(result.added)
            updated += len(result.changed)
            deleted += len(result.deleted)
            self.stdout.write(f"  {sheet_id}: {result.summary()} (version {result.version})")
        # Another process (the poller, a webhook) may have synced a sheet while this waited for
        # it, so what this run changed can be less than what the mirror holds: say both.
        held = Sheet.objects.filter(pk__in=ids).aggregate(rows=Sum("row_count"))["rows"] or 0
        self.stdout.write(
            f"{len(ids) - len(failures)} of {len(ids)} sheets synced: {added} rows added, "
            f"{updated} updated, {deleted} deleted; {api_calls_made() - calls_before} "
            f"Smartsheet calls in {time.monotonic() - began:.1f} s. The mirror holds {held:,} "
            f"rows of these sheets."
        )
        if failures:
            raise CommandError("Some sheets failed to sync:\n  " + "\n  ".join(failures))
