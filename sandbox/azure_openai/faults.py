"""Scripted faults (sandbox/faults.py) as Azure OpenAI sends them.

A request draws its fault after its body passed validation (a malformed request is answered as
Azure answers it and consumes nothing), before the quota is charged. "429" answers as the quota
does (`retry-after-ms` and `retry-after`, the window remembered so a request inside it is
counted); "500" and "503" are server errors; "timeout" holds the request and then drops it;
"content_filter" on the prompt is Azure's 400 `content_filter`. Two faults let the request run
and change what comes back: "content_filter" on the completion (200, `finish_reason:
"content_filter"`) and "stream_cut" (the first chunks, then a dropped connection, no `[DONE]`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.faults import CutMidway, Fault, FaultError, FaultTarget, HeldThenDropped, route_key

if TYPE_CHECKING:
    from sandbox.azure_openai.service import AzureOpenAIService

SERVICE = "openai"
ROUTE = "POST /openai/deployments/{name}/chat/completions"
KINDS = frozenset({"429", "500", "503", "timeout", "stream_cut", "content_filter"})
UNAVAILABLE = {
    "error": {
        "code": "ServiceUnavailable",
        "message": (
            "The service is temporarily unable to process your request. Please try again later."
        ),
    }
}


def fault_target(deployments: dict[str, Any]) -> FaultTarget:
    """Azure's faults match on route and deployment name."""

    def check(spec: dict[str, Any], fault: Fault) -> None:
        name = spec.get("deployment")
        if name is not None and name not in deployments:
            raise FaultError(
                f"openai has no deployment {name!r}; use one of {', '.join(deployments)}."
            )

    return FaultTarget(
        routes={route_key(ROUTE): ROUTE},
        kinds=KINDS,
        scopes=frozenset({"deployment"}),
        check=check,
    )


async def scripted_answer(
    service: AzureOpenAIService,
    request: Request,
    deployment: str,
    cfg: dict[str, Any],
) -> Response | None:
    """The answer that replaces the model's if this request draws such a fault, else None.

    A fault that changes the model's answer instead is left on `request.state.fault`.
    """
    faults = service.state.faults
    fault = faults.take(SERVICE, ROUTE, deployment=deployment) if faults.pending else None
    if fault is None:
        return None
    request.state.fault = fault
    kind = fault.kind
    if kind == "stream_cut" or (kind == "content_filter" and fault.on == "completion"):
        return None
    if kind == "429":
        seconds = cfg["retry_after_ms"] / 1000 if fault.retry_after is None else fault.retry_after
        return await service._injected(
            request, "rate_limit", deployment, {**cfg, "retry_after_ms": seconds * 1000}
        )
    if kind == "500":
        return await service._injected(request, "server_error", deployment, cfg)
    service._record(deployment, injected_failure=True)
    headers = service._limit_headers(deployment, cfg, None)
    if kind == "503":
        service.state.stats.add(SERVICE, "injected.service_unavailable")
        return Response(orjson.dumps(UNAVAILABLE), 503, headers, "application/json")
    if kind == "timeout":
        service.state.stats.add(SERVICE, "injected.timeout")
        return HeldThenDropped(fault.seconds)
    # The prompt filter; service.py imports this module, so its body builder is fetched late.
    from sandbox.azure_openai.service import _prompt_filtered_body

    service.state.stats.add(SERVICE, "content_filtered_prompts")
    return Response(orjson.dumps(_prompt_filtered_body()), 400, headers, "application/json")


def completion_filtered(request: Request) -> bool:
    """Whether this request drew a fault that filters the model's completion."""
    fault = getattr(request.state, "fault", None)
    return fault is not None and fault.kind == "content_filter" and fault.on == "completion"


Endpoint = Callable[[Any, Request], Awaitable[Response]]


def cuts_streams(endpoint: Endpoint) -> Endpoint:
    """Wrap the endpoint so a request that drew "stream_cut" gets its answer cut mid-way."""

    @functools.wraps(endpoint)
    async def wrapper(service: Any, request: Request) -> Response:
        response = await endpoint(service, request)
        fault = getattr(request.state, "fault", None)
        if fault is not None and fault.kind == "stream_cut":
            return CutMidway(response, fault.after_chunks)
        return response

    return wrapper
