from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from smartsheet.exceptions import ApiError

from sheets.client import SmartsheetUnavailable
from sheets.webhooks import webhooks_register


class Command(BaseCommand):
    help = (
        "Create, enable or repair one Smartsheet webhook per mirrored sheet. The receiver at "
        "the callback URL must be running: Smartsheet checks it with a challenge."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--callback-url",
            default=settings.WEBHOOK_CALLBACK_URL,
            help="where Smartsheet sends callbacks (default: WEBHOOK_CALLBACK_URL, %(default)s)",
        )

    def handle(self, *args, callback_url: str, **options) -> None:
        try:
            reports = webhooks_register(callback_url=callback_url)
        except (SmartsheetUnavailable, ApiError) as exc:
            raise CommandError(f"Could not register webhooks: {exc}") from exc
        if not reports:
            self.stdout.write("No sheets are mirrored yet: run `manage.py sync_sheets --all`.")
        for r in reports:
            self.stdout.write(f"sheet {r.sheet_id}: webhook {r.webhook_id} {r.status} ({r.action})")
        failed = [r for r in reports if r.action.startswith("failed")]
        if failed:
            names = ", ".join(str(r.sheet_id) for r in failed)
            raise CommandError(
                f"{len(failed)} of {len(reports)} webhooks are not enabled (sheets {names}); "
                "see above."
            )
