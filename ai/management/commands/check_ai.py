from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ai.checks import deployments_check

_WHAT_TO_CHECK = {
    "credentials": "check AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT",
    "not_found": "check the deployment name (Azure AI Foundry → Deployments), "
    "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_VERSION",
    "unreachable": "check AZURE_OPENAI_ENDPOINT and the network",
    "rejected": "check AZURE_OPENAI_API_VERSION and the deployment's model",
}


class Command(BaseCommand):
    help = "Call each configured Azure OpenAI deployment once (1 token) and say whether it works."

    def handle(self, *args, **options) -> None:
        self.stdout.write(
            f"Azure OpenAI at {settings.AZURE_OPENAI_ENDPOINT} "
            f"(api-version {settings.AZURE_OPENAI_API_VERSION})"
            + (" — sandbox" if settings.AZURE_OPENAI_SANDBOX else "")
        )
        verdicts = deployments_check()
        for verdict in verdicts:
            line = f"  {verdict.deployment} ({verdict.model}): {verdict.status} — {verdict.message}"
            style = self.style.SUCCESS if verdict.usable else self.style.ERROR
            self.stdout.write(style(line))
            if not verdict.usable:
                self.stdout.write(f"    → {_WHAT_TO_CHECK[verdict.status]}")
        bad = [v.deployment for v in verdicts if not v.usable]
        if bad:
            raise CommandError(f"Not usable: {', '.join(bad)}.")
        self.stdout.write(self.style.SUCCESS("All deployments usable."))
