"""Scripted faults (sandbox/faults.py) as Smartsheet sends them.

"429" is 429/4003 "Rate limit exceeded." with no Retry-After (Smartsheet sends none, and the SDK
would ignore it); "4004" is 500/4004; "500" is Smartsheet's 500/4002 server timeout; "503" its
503/4001 maintenance. The SDK retries all four by itself (it keys on errorCode). "timeout" holds
the request and then drops it (the SDK sets no timeout of its own); "stream_cut" sends half of the
response body and drops the connection.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from sandbox.faults import Fault, FaultError, FaultTarget, route_key

CODES = {"429": 4003, "4004": 4004, "500": 4002, "503": 4001}
KINDS = frozenset({*CODES, "timeout", "stream_cut"})


def _check(spec: dict[str, Any], fault: Fault) -> None:
    if fault.retry_after is not None:
        raise FaultError(
            "Smartsheet sends no Retry-After with its 429/4003 (clients back off on their own); "
            "leave retry_after out."
        )


def fault_target(route_labels: set[str]) -> FaultTarget:
    """Smartsheet's faults match on route ("PUT /sheets/{id}/rows") and sheet id."""
    return FaultTarget(
        routes={route_key(label): label for label in route_labels},
        kinds=KINDS,
        scopes=frozenset({"sheet"}),
        check=_check,
    )


def sheet_of(route: str, request: Request) -> int | None:
    """The sheet a request names, for routes under /sheets/{id}."""
    if " /sheets/{id}" in route:
        return int(request.path_params["id"])
    return None
