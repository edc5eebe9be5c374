"""`manage.py sandbox`: the Smartsheet and Azure OpenAI stand-ins, in this process, on one port."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the sandbox (Smartsheet API 2.0 at /2.0, Azure OpenAI at /openai/)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--seed", choices=["demo", "empty"], default="demo")

    def handle(self, *args, host: str, port: int, seed: str, **options) -> None:
        import uvicorn

        from sandbox.server import build_app

        started = time.monotonic()
        app = build_app(seed)
        self.stdout.write(
            f"Sandbox seeded {seed!r} in {time.monotonic() - started:.1f}s; "
            f"serving http://{host}:{port} (Smartsheet at /2.0, control at /_sandbox/)",
        )
        self.stdout.flush()
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
