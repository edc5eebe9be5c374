"""Scripted faults: "the next N requests matching … fail with X", for deterministic tests.

A test arms a rule over the control API (`POST /_sandbox/faults`); each service asks the queue,
at one fixed point of every request, whether that request draws a fault (`FaultQueue.take`).
Rules are tried in the order they were armed and each matching request consumes exactly one entry
of the first rule that has entries left, under a lock, so N armed entries fail exactly N requests
however many clients race. What the fault looks like on the wire (Smartsheet's 4003 body, Azure's
retry-after headers) is each service's business: sandbox/smartsheet/faults.py and
sandbox/azure_openai/faults.py. This module holds the queue, the control routes and the two
faults that are the same for every service: a request held and then dropped, and a response cut
mid-way.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

KINDS = ("429", "4004", "500", "503", "timeout", "stream_cut", "content_filter")
DEFAULT_HOLD_S = 30.0
DEFAULT_AFTER_CHUNKS = 2
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


class FaultError(ValueError):
    """A fault spec the sandbox refuses; the message says what to send instead."""


def route_key(route: str) -> str:
    """`"post /sheets/{sheetId}/rows"` and `"POST /sheets/{id}/rows"` name the same route."""
    method, _, path = route.strip().partition(" ")
    return f"{method.upper()} {_PLACEHOLDER.sub('{}', path.strip())}"


@dataclass(frozen=True)
class Fault:
    """What a request that draws a fault gets; the parameters unused by its kind stay default."""

    kind: str
    retry_after: float | None = None  # "429" on Azure: seconds announced in retry-after(-ms)
    seconds: float = DEFAULT_HOLD_S  # "timeout": how long the request is held before the drop
    after_chunks: int = DEFAULT_AFTER_CHUNKS  # "stream_cut": SSE events sent before the cut
    on: str = "prompt"  # "content_filter": the prompt (400) or the completion (200, filtered)

    def wire(self) -> dict[str, Any]:
        params: dict[str, Any] = {"kind": self.kind}
        if self.kind == "429" and self.retry_after is not None:
            params["retry_after"] = self.retry_after
        elif self.kind == "timeout":
            params["seconds"] = self.seconds
        elif self.kind == "stream_cut":
            params["after_chunks"] = self.after_chunks
        elif self.kind == "content_filter":
            params["on"] = self.on
        return params


@dataclass(frozen=True)
class FaultTarget:
    """What one service lets a rule match on and fail with."""

    routes: dict[str, str]  # route key (see route_key) -> the route as the service names it
    kinds: frozenset[str]
    scopes: frozenset[str]  # the filters besides route that mean something here
    check: Callable[[dict[str, Any], Fault], None] = lambda spec, fault: None


@dataclass
class FaultRule:
    id: int
    service: str
    route: str | None
    route_key: str | None
    sheet: int | None
    deployment: str | None
    times: int
    fault: Fault
    fired: int = 0

    def matches(self, service: str, key: str, sheet: int | None, deployment: str | None) -> bool:
        return (
            self.fired < self.times
            and self.service == service
            and (self.route_key is None or self.route_key == key)
            and (self.sheet is None or self.sheet == sheet)
            and (self.deployment is None or self.deployment == deployment)
        )

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "route": self.route,
            "sheet": self.sheet,
            "deployment": self.deployment,
            "times": self.times,
            "fired": self.fired,
            "remaining": self.times - self.fired,
            "fault": self.fault.wire(),
        }


@dataclass
class _Totals:
    armed: int = 0
    fired: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)


class FaultQueue:
    """The armed rules of one sandbox process; `take` is its only per-request cost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._targets: dict[str, FaultTarget] = {}
        self._ids = itertools.count(1)
        self._totals = _Totals()
        # Entries left across all rules: read without the lock as a fast "nothing armed" check.
        self.pending = 0

    def register(self, service: str, target: FaultTarget) -> None:
        self._targets[service] = target

    def take(
        self,
        service: str,
        route: str,
        *,
        sheet: int | None = None,
        deployment: str | None = None,
    ) -> Fault | None:
        """The fault this request draws, if a rule matches; consumes one entry of that rule."""
        if not self.pending:
            return None
        key = route_key(route)
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, key, sheet, deployment):
                    rule.fired += 1
                    self.pending -= 1
                    self._totals.fired += 1
                    self._totals.by_kind[rule.fault.kind] += 1
                    return rule.fault
        return None

    def arm(self, spec: Any) -> dict[str, Any]:
        """Add a rule from its JSON spec; FaultError (with what to send instead) if it is wrong."""
        rule = self._parse(spec)
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
            self.pending += rule.times
            self._totals.armed += rule.times
            return rule.wire()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.wire() for rule in self._rules]

    def clear(self) -> int:
        """Disarm every rule; returns how many entries were still pending."""
        with self._lock:
            dropped = self.pending
            self._rules = []
            self.pending = 0
            return dropped

    def reset(self) -> None:
        with self._lock:
            self._rules = []
            self.pending = 0
            self._ids = itertools.count(1)
            self._totals = _Totals()

    def summary(self) -> dict[str, Any]:
        """For /_sandbox/stats: entries armed and fired since the last reset, and still pending."""
        with self._lock:
            return {
                "armed": self._totals.armed,
                "fired": self._totals.fired,
                "pending": self.pending,
                "fired_by_kind": dict(self._totals.by_kind),
            }

    # -- parsing a spec ---------------------------------------------------------------------------

    def _parse(self, spec: Any) -> FaultRule:
        if not isinstance(spec, dict):
            raise FaultError(
                'A fault must be a JSON object such as {"service": "smartsheet", "times": 1, '
                '"fault": {"kind": "4004"}}.'
            )
        known = {"service", "route", "sheet", "deployment", "times", "fault"}
        unknown = sorted(set(spec) - known)
        if unknown:
            known_keys = ", ".join(sorted(known))
            raise FaultError(f"Unknown fault keys {unknown}; known keys: {known_keys}.")
        service = spec.get("service")
        target = self._targets.get(service) if isinstance(service, str) else None
        if target is None:
            raise FaultError(
                f"A fault needs a service, one of {', '.join(sorted(self._targets))}; "
                f"got {service!r}."
            )
        times = spec.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise FaultError(f"times must be a whole number of at least 1; got {times!r}.")
        route = spec.get("route")
        key = None
        if route is not None:
            key = route_key(route) if isinstance(route, str) else None
            if key not in target.routes:
                raise FaultError(
                    f"{service} has no route {route!r}; use one of: "
                    f"{', '.join(sorted(target.routes.values()))}."
                )
        for scope in ("sheet", "deployment"):
            if spec.get(scope) is not None and scope not in target.scopes:
                raise FaultError(f"{service} faults cannot match on {scope}.")
        sheet = spec.get("sheet")
        if sheet is not None and (not isinstance(sheet, int) or isinstance(sheet, bool)):
            raise FaultError(f"sheet must be a sheet id (a number); got {sheet!r}.")
        deployment = spec.get("deployment")
        if deployment is not None and not isinstance(deployment, str):
            raise FaultError(f"deployment must be a deployment name; got {deployment!r}.")
        fault = _parse_fault(spec.get("fault"), target, service)
        target.check(spec, fault)
        return FaultRule(
            id=0,
            service=service,
            route=route,
            route_key=key,
            sheet=sheet,
            deployment=deployment,
            times=times,
            fault=fault,
        )


def _parse_fault(params: Any, target: FaultTarget, service: str) -> Fault:
    if not isinstance(params, dict) or "kind" not in params:
        raise FaultError('fault must be an object with a kind, such as {"kind": "500"}.')
    kind = str(params["kind"])
    if kind not in target.kinds:
        allowed = ", ".join(k for k in KINDS if k in target.kinds)
        raise FaultError(f"{service} cannot fail with kind {kind!r}; use one of {allowed}.")
    allowed_params = {
        "429": {"retry_after"},
        "timeout": {"seconds"},
        "stream_cut": {"after_chunks"},
        "content_filter": {"on"},
    }.get(kind, set())
    unknown = sorted(set(params) - {"kind"} - allowed_params)
    if unknown:
        takes = ", ".join(sorted(allowed_params)) or "no parameters"
        raise FaultError(f"Fault kind {kind!r} takes {takes}; got {unknown}.")
    fields: dict[str, Any] = {"kind": kind}
    for name in ("retry_after", "seconds"):
        if name in params:
            value = params[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise FaultError(f"{name} must be a number of seconds, at least 0; got {value!r}.")
            fields[name] = float(value)
    if "after_chunks" in params:
        value = params["after_chunks"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FaultError(f"after_chunks must be a whole number, at least 0; got {value!r}.")
        fields["after_chunks"] = value
    if "on" in params:
        if params["on"] not in ("prompt", "completion"):
            raise FaultError(f'on must be "prompt" or "completion"; got {params["on"]!r}.')
        fields["on"] = params["on"]
    return Fault(**fields)


# -- the control routes ---------------------------------------------------------------------------


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def fault_routes(queue: FaultQueue) -> list[BaseRoute]:
    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return _json({"faults": queue.rules()})
        if request.method == "DELETE":
            return _json({"cleared": queue.clear()})
        try:
            spec = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return _json({"error": f"The body is not valid JSON: {exc}."}, 400)
        try:
            return _json(queue.arm(spec), 201)
        except FaultError as exc:
            return _json({"error": str(exc)}, 400)

    return [Route("/faults", faults, methods=["GET", "POST", "DELETE"])]


# -- faults every service shares: held then dropped, cut mid-way ----------------------------------


class ConnectionDropped(Exception):
    """Raised to end a response when the server gives no way to close the connection itself."""


async def _until_disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def drop_connection(receive: Receive) -> None:
    """Close the client's connection with nothing more sent, as a network failure would.

    ASGI has no message for this. Under uvicorn (how `manage.py sandbox` serves) `receive` is a
    method of the request cycle that owns the socket, so close that; once uvicorn has seen the
    disconnect it neither answers for us nor logs an unfinished response.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionDropped
    transport.close()
    await _until_disconnected(receive)


class HeldThenDropped(Response):
    """A request that never gets an answer: held until the client gives up or `seconds` pass."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with asyncio.timeout(self.seconds):
                await _until_disconnected(receive)
                return  # the client timed out first
        except TimeoutError:
            pass
        await drop_connection(receive)


class CutMidway(Response):
    """`inner` with its status and headers, then part of its body, then a dropped connection.

    A streamed (SSE) response is cut after `after_chunks` events and never sends `[DONE]`; any
    other response after half its body (its content-length promises the whole).
    """

    def __init__(self, inner: Response, after_chunks: int) -> None:
        super().__init__()
        self.inner = inner
        self.after_chunks = after_chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner = self.inner
        await send(
            {
                "type": "http.response.start",
                "status": inner.status_code,
                "headers": inner.raw_headers,
            }
        )
        if isinstance(inner, StreamingResponse):
            chunks = inner.body_iterator
            sent = 0
            try:
                async for chunk in chunks:
                    data = chunk if isinstance(chunk, bytes) else chunk.encode()
                    if sent >= self.after_chunks or data.startswith(b"data: [DONE]"):
                        break
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                    sent += 1
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]
        else:
            half = inner.body[: len(inner.body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
        await drop_connection(receive)
