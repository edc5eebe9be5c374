"""Smartsheet API 2.0 routes (being filled in; the frame commit serves none yet)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from sandbox.state import SandboxState


class _Webhooks:
    async def flush(self, timeout: float) -> bool:
        return True


class SmartsheetService:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.webhooks = _Webhooks()

    def routes(self) -> list[BaseRoute]:
        return []

    async def close(self) -> None:
        return None
