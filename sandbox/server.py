"""The sandbox's ASGI app: Smartsheet at /2.0, Azure OpenAI at /openai/, control at /_sandbox/."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from sandbox import faults
from sandbox.azure_openai import AzureOpenAIService
from sandbox.azure_openai import faults as azure_faults
from sandbox.azure_openai.service import DEPLOYMENTS
from sandbox.smartsheet import SmartsheetService
from sandbox.smartsheet import faults as smartsheet_faults
from sandbox.state import ConfigError, SandboxState


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def control_routes(state: SandboxState, smartsheet: SmartsheetService) -> list[BaseRoute]:
    async def config(request: Request) -> Response:
        if request.method == "GET":
            return _json(state.config)
        try:
            partial = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _json({"error": f"The body is not valid JSON: {exc}."}, 400)
        try:
            return _json(state.merge_config(partial))
        except ConfigError as exc:
            return _json({"error": str(exc)}, 400)

    async def stats(request: Request) -> Response:
        return _json({**state.stats.snapshot(), "faults": state.faults.summary()})

    async def requests_logged(request: Request) -> Response:
        return _json({"requests": state.requests.entries(request.query_params.get("service"))})

    async def reset(request: Request) -> Response:
        state.reset()
        return _json({"reset": True, "seed": state.seed})

    async def flush(request: Request) -> Response:
        # Tests wait here instead of sleeping: every queued webhook callback has been delivered
        # (or has failed for good) when this answers.
        timeout = float(request.query_params.get("timeout", "30"))
        done = await smartsheet.webhooks.flush(timeout)
        return _json({"flushed": done}, 200 if done else 504)

    return [
        Route("/config", config, methods=["GET", "POST"]),
        Route("/stats", stats, methods=["GET"]),
        Route("/requests", requests_logged, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/flush", flush, methods=["POST"]),
        *faults.fault_routes(state.faults),
    ]


_SERVICES = (("/2.0/", "smartsheet"), ("/openai/", "openai"))


class _RequestLogMiddleware:
    """Logs each Smartsheet and Azure OpenAI request: when it arrived and when its answer
    started (time.time(), the host's wall clock, which Redis's TIME also reads), its status and
    the retry-after it announced, and the client's `x-ms-client-request-id` (Azure) or
    `x-request-id`."""

    def __init__(self, app, log) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        service = next((name for prefix, name in _SERVICES if path.startswith(prefix)), None)
        if scope["type"] != "http" or service is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        entry = {
            "service": service,
            "method": scope["method"],
            "path": path,
            "arrived": time.time(),
            "request_id": (
                headers.get(b"x-ms-client-request-id") or headers.get(b"x-request-id") or b""
            ).decode()
            or None,
            "status": None,
            "answered": None,
            "retry_after_ms": None,
        }
        self.log.add(entry)  # on arrival: a request never answered (a timeout fault) shows too

        async def logging_send(message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                answer = dict(message.get("headers") or [])
                entry["answered"] = time.time()
                if b"retry-after-ms" in answer:
                    entry["retry_after_ms"] = int(answer[b"retry-after-ms"])
            await send(message)

        await self.app(scope, receive, logging_send)


def build_app(seed: str) -> Starlette:
    """The whole sandbox for one seed ("demo" or "empty"); state lives in this app only."""
    state = SandboxState(seed)
    smartsheet = SmartsheetService(state)
    routes: list[BaseRoute] = [
        Mount("/2.0", routes=smartsheet.routes()),
        Mount("/_sandbox", routes=control_routes(state, smartsheet)),
    ]
    azure = AzureOpenAIService(state)
    routes += azure.routes()
    state.faults.register("smartsheet", smartsheet_faults.fault_target(smartsheet.route_labels))
    state.faults.register("openai", azure_faults.fault_target(DEPLOYMENTS))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await smartsheet.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(_RequestLogMiddleware, log=state.requests)
    app.state.sandbox = state
    app.state.smartsheet = smartsheet
    return app
