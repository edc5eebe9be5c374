"""The one way this app talks to Smartsheet: the SDK behind a shared limiter, retries, a breaker.

Every HTTP request the SDK makes passes through `_WorkbenchSmartsheet.request_with_retry`:
1. the Redis-state circuit breaker, so all processes stop calling a Smartsheet that is down
   (checked first: a refused call takes no limiter slot and waits for none);
2. the Redis sliding-window limiter shared by every web and worker process (300/min per token by
   default, cell history costs 10) — waiting here is cheaper than a 429;
3. one attempt through the SDK's own session, with a request timeout (the SDK sets none). Its
   transport adapter is the last step before the wire and the first after: a request waits
   there while a pause is on (another request's 429 since it was admitted), and a 429 pauses
   every process the moment it arrives, so none is sent inside that pause once it was received;
4. `backoff` retries (exponential, full jitter, bounded) on 4001-4004 and connection errors.
The SDK's own retry loop is switched off: it would retry inside one limiter slot and multiply
with ours. Breaker and limiter belong to one API base and token: a command run against a wrong
base or token trips its own breaker, never the one the running app uses.

Callers get the SDK's typed `ApiError`s for their own mistakes (404, 400 …) and
`SmartsheetUnavailable` when the service is down, overloaded or the breaker is open — and when
Redis, where the shared limiter lives, does not answer (fail closed: no process may send
uncounted requests, and Celery, whose broker is the same Redis, retries the task later).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import backoff
import pybreaker
import redis
import requests
import smartsheet
from django.conf import settings
from requests.adapters import HTTPAdapter
from smartsheet.exceptions import ApiError, UnexpectedRequestError
from smartsheet.session import _SSLAdapter
from smartsheet.smartsheet import AbstractUserCalcBackoff, OperationErrorResult

from core.breakers import redis_breaker, seconds_until_trial
from core.ratelimit import RateLimitTimeout, SlidingWindowLimiter
from core.redis import fail_fast_redis

logger = logging.getLogger(__name__)

# Smartsheet's limit on rows per add/update request.
MAX_ROWS_PER_REQUEST = 500
TRANSIENT_CODES = frozenset({4001, 4002, 4004})
RATE_LIMITED = 4003


class SmartsheetUnavailable(Exception):
    """Smartsheet cannot be reached or keeps failing; the caller should try again later."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        hint = f"try again in {retry_after:.0f} s" if retry_after else "try again later"
        super().__init__(f"Smartsheet is unavailable ({reason}); {hint}")


class _Transient(Exception):
    """A 4001/4002/4004 (or 5xx) answer: worth retrying, counts against the breaker."""

    def __init__(self, result: OperationErrorResult, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.result = result
        self.code = code


class _RateLimited(_Transient):
    """A 429/4003: retried after a pause, never the service's fault (excluded from the breaker)."""


class _NoSdkRetry(AbstractUserCalcBackoff):
    def calc_backoff(self, previous_attempts, total_elapsed_time, error_result):
        return -1  # negative ends the SDK's loop after the first attempt


class _TimeoutMixin:
    """The transport's part: a timeout on every request, the pause checked just before sending
    and set as soon as a 429 arrives. `workbench_sent_at` (on the request) and `workbench_paused`
    (on the response: start, end) note both on Redis's clock."""

    timeout: float | tuple[float, float]

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        limiter = smartsheet_limiter()
        while True:
            sent_at, wait = limiter.gate()
            if sent_at is not None:
                break
            time.sleep(wait)
        request.workbench_sent_at = sent_at
        # Names the request in the logs of both sides (Smartsheet ignores it).
        request.headers["X-Request-Id"] = uuid.uuid4().hex
        response = super().send(request, **kwargs)
        if response.status_code == 429:
            # No Retry-After from Smartsheet: pause every process a little.
            seconds = settings.SMARTSHEET_RATE_LIMIT_PAUSE
            try:
                response.workbench_paused = limiter.pause(seconds)
            except redis.RedisError as exc:  # the 429 still reaches the retry loop
                logger.warning("Redis unreachable: a Smartsheet 429 paused nobody (%s)", exc)
        return response


class _TimeoutHTTPAdapter(_TimeoutMixin, HTTPAdapter):
    pass


class _TimeoutSSLAdapter(_TimeoutMixin, _SSLAdapter):
    pass


_calls_lock = threading.Lock()
_calls = 0


def api_calls_made() -> int:
    """HTTP requests this process has sent to Smartsheet (for summaries and benchmarks)."""
    return _calls


def _count_call() -> None:
    global _calls
    with _calls_lock:
        _calls += 1


def _account_key() -> str:
    # The token never goes into Redis keys; a short digest of base and token tells them apart.
    account = f"{settings.SMARTSHEET_API_BASE.rstrip('/')}\n{settings.SMARTSHEET_ACCESS_TOKEN}"
    return hashlib.sha256(account.encode()).hexdigest()[:12]


def smartsheet_limiter() -> SlidingWindowLimiter:
    return SlidingWindowLimiter(
        f"smartsheet:{_account_key()}",
        limit=settings.SMARTSHEET_RATE_LIMIT_PER_MINUTE,
        window=settings.SMARTSHEET_RATE_LIMIT_WINDOW,
    )


def smartsheet_breaker() -> pybreaker.CircuitBreaker:
    return redis_breaker(
        f"smartsheet:{_account_key()}",
        fail_max=settings.SMARTSHEET_BREAKER_FAIL_MAX,
        reset_timeout=settings.SMARTSHEET_BREAKER_RESET_TIMEOUT,
        # A Redis error in the transport (the pause check) is ours, not Smartsheet's.
        exclude=[_RateLimited, redis.RedisError],
    )


def _breaker_open() -> SmartsheetUnavailable:
    breaker = smartsheet_breaker()
    wait = seconds_until_trial(breaker) or float(breaker.reset_timeout)
    return SmartsheetUnavailable("too many recent failures", retry_after=max(1.0, wait))


def _unreachable(exc: BaseException) -> str:
    """What a person needs to know of a failed connection: where to, and why, in a few words."""
    base = settings.SMARTSHEET_API_BASE.rstrip("/")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"could not connect to {base} within {settings.SMARTSHEET_TIMEOUT:g} s"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer from {base} within {settings.SMARTSHEET_TIMEOUT:g} s (timeout)"
    detail = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("Network is unreachable", "network unreachable"),
        ("Connection reset", "connection reset"),
        ("RemoteDisconnected", "connection closed by the server"),
    ):
        if needle in detail:
            return f"could not connect to {base} ({reason})"
    return f"could not connect to {base} ({type(exc).__name__})"


def _error_code(result: OperationErrorResult) -> tuple[int | None, str]:
    try:
        body = result.resp.json()
    except ValueError:
        return None, result.resp.text[:200]
    return body.get("errorCode"), str(body.get("message", ""))


class _WorkbenchSmartsheet(smartsheet.Smartsheet):
    def _log_request(self, operation, response):
        # The SDK decodes and re-encodes every JSON response to log it at DEBUG, whatever the
        # log level: on a 1,000-row page that is more time than the HTTP fetch itself.
        if self._log.isEnabledFor(logging.DEBUG) or not 200 <= response.status_code <= 299:
            super()._log_request(operation, response)
        else:
            self._log.info(
                '{"request": {"command": "%s %s"}}', response.request.method, response.request.url
            )

    def request_with_retry(self, prepped_request, operation):
        # The response hook redacts the token on the request it sent, so each attempt sends a copy.
        pristine = prepped_request.copy()
        # Cell history counts 10 against the per-minute budget.
        cost = 10 if prepped_request.path_url.split("?")[0].endswith("/history") else 1
        failures: list[BaseException] = []

        def record(details: dict) -> None:
            failures.append(details["exception"])
            _log_retry(details)

        attempt = backoff.on_exception(
            backoff.expo,
            (_Transient, UnexpectedRequestError),
            max_tries=settings.SMARTSHEET_RETRY_MAX_TRIES,
            max_time=settings.SMARTSHEET_RETRY_MAX_TIME,
            factor=settings.SMARTSHEET_RETRY_FACTOR,
            max_value=settings.SMARTSHEET_RETRY_MAX_DELAY,
            jitter=backoff.full_jitter,
            on_backoff=record,
            # Giving up is expected (the caller gets SmartsheetUnavailable), not an ERROR.
            giveup_log_level=logging.INFO,
        )(self._attempt)
        try:
            return attempt(pristine, operation, cost)
        except SmartsheetUnavailable as exc:
            # The breaker opened during this call's own retries: say what kept failing rather
            # than only "too many recent failures".
            last = failures[-1] if failures else None
            if last is None or exc.reason != "too many recent failures":
                raise
            raise SmartsheetUnavailable(
                f"{_failure_reason(last)}; calls are paused", retry_after=exc.retry_after
            ) from exc
        except _Transient as exc:
            raise SmartsheetUnavailable(
                f"{exc} after {settings.SMARTSHEET_RETRY_MAX_TRIES} attempts"
            ) from exc
        except UnexpectedRequestError as exc:
            raise SmartsheetUnavailable(_unreachable(exc.__cause__ or exc)) from exc
        except redis.RedisError as exc:
            logger.warning("Redis unreachable, Smartsheet request not sent: %s", exc)
            raise SmartsheetUnavailable(
                "Redis, which holds the shared request budget, does not answer"
            ) from exc

    def _attempt(self, pristine, operation, cost: int):
        breaker = smartsheet_breaker()
        if seconds_until_trial(breaker) > 0:
            raise _breaker_open()
        limiter = smartsheet_limiter()
        try:
            reservation = limiter.acquire(cost, max_wait=settings.SMARTSHEET_RATE_LIMIT_MAX_WAIT)
        except RateLimitTimeout as exc:
            raise SmartsheetUnavailable(
                f"this app's budget of {limiter.limit} requests per "
                f"{settings.SMARTSHEET_RATE_LIMIT_WINDOW:.0f} s is used up",
                retry_after=exc.wait,
            ) from exc
        try:
            with breaker.calling():
                _count_call()
                try:
                    result = self._request(pristine.copy(), operation)
                finally:
                    # Smartsheet counted it on arrival, before this answer: see count_from_now.
                    # Redis gone meanwhile costs that correction, never the answer.
                    with contextlib.suppress(redis.RedisError):
                        reservation.count_from_now()
                if isinstance(result, OperationErrorResult):
                    code, message = _error_code(result)
                    if code == RATE_LIMITED:
                        # The transport paused every process when the 429 arrived.
                        raise _RateLimited(result, code, message)
                    if code in TRANSIENT_CODES or result.resp.status_code >= 500:
                        raise _Transient(result, code, message)
                return result
        except pybreaker.CircuitBreakerError as exc:
            raise _breaker_open() from exc


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, UnexpectedRequestError):
        return _unreachable(exc.__cause__ or exc)
    return str(exc)


def _log_retry(details: dict) -> None:
    logger.info(
        "Smartsheet request failed (%s); retry %d in %.1f s",
        _failure_reason(details["exception"]),
        details["tries"],
        details["wait"],
    )


# What a person can do about the API's refusals that are not about one sheet or row.
_ACCOUNT_HINTS = {
    1002: "check SMARTSHEET_ACCESS_TOKEN (Smartsheet → Account → Apps & Integrations → API Access)",
    1003: "the token has expired: create a new one and set SMARTSHEET_ACCESS_TOKEN",
    1004: "the token's user may not do this: share the sheet with that user",
}


def api_error_sentence(exc: ApiError) -> str:
    """A Smartsheet refusal as one sentence for a person (raw JSON stays in the log)."""
    result = getattr(getattr(exc, "error", None), "result", None)
    code = getattr(result, "error_code", None)
    message = (getattr(result, "message", None) or "no message").rstrip(".")
    hint = _ACCOUNT_HINTS.get(code)
    return f"Smartsheet refused the request: {message} (error {code})" + (
        f"; {hint}." if hint else "."
    )


_local = threading.local()


def smartsheet_client() -> smartsheet.Smartsheet:
    """This thread's SDK client (requests sessions are not shared across threads)."""
    key = (
        settings.SMARTSHEET_API_BASE,
        settings.SMARTSHEET_ACCESS_TOKEN,
        settings.SMARTSHEET_TIMEOUT,
        settings.SMARTSHEET_CHANGE_AGENT,
    )
    cached = getattr(_local, "client", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    client = _WorkbenchSmartsheet(
        access_token=settings.SMARTSHEET_ACCESS_TOKEN,
        api_base=settings.SMARTSHEET_API_BASE.rstrip("/"),
        max_retry_time=_NoSdkRetry(),
        user_agent="smartsheet-ai-workbench",
    )
    client.errors_as_exceptions(True)
    # The SDK logs every request at INFO (and each error response at ERROR, before we retry).
    logging.getLogger("smartsheet").setLevel(
        logging.CRITICAL if not settings.DEBUG else logging.INFO
    )
    client.with_change_agent(settings.SMARTSHEET_CHANGE_AGENT)
    # The SDK calls session.send() with no timeout; the adapters add one to every request. No
    # urllib3-level retries either: backoff above is the only retry layer.
    for prefix, adapter_class in (
        ("http://", _TimeoutHTTPAdapter),
        ("https://", _TimeoutSSLAdapter),
    ):
        adapter = adapter_class(pool_connections=4, pool_maxsize=8, max_retries=0)
        adapter.timeout = (min(5.0, settings.SMARTSHEET_TIMEOUT), settings.SMARTSHEET_TIMEOUT)
        client._session.mount(prefix, adapter)
    _local.client = (key, client)
    return client


# --- Reads ------------------------------------------------------------------------------------


def sheets_list() -> list[smartsheet.models.Sheet]:
    """Every sheet the token can see (abbreviated: id, name, version)."""
    result = smartsheet_client().Sheets.list_sheets(include="sheetVersion", include_all=True)
    return list(result.data)


def sheet_get(*, sheet_id: int, **query: Any) -> dict[str, Any]:
    """GET /sheets/{id} as the API's JSON; `query` uses the API's names (`pageSize`, `page`,
    `rowsModifiedSince`, `columnIds`, `exclude`, …).

    Through the SDK's Passthrough (same auth, limiter, breaker and retries) rather than
    `Sheets.get_sheet`: the SDK's typed models cost about 2 ms per row to build, 16 times the
    whole HTTP fetch of a 1,000-row page.
    """
    for name, value in query.items():
        if isinstance(value, list | tuple):
            query[name] = ",".join(str(v) for v in value)
    return smartsheet_client().Passthrough.get(f"/sheets/{sheet_id}", query_params=query).data


def sheet_version_get(*, sheet_id: int) -> int:
    return int(smartsheet_client().Sheets.get_sheet_version(sheet_id).version)


def row_get(*, sheet_id: int, row_id: int, **query: Any) -> dict[str, Any]:
    """GET /sheets/{id}/rows/{rowId} as the API's JSON (`include="writerInfo"` adds modifiedBy)."""
    return (
        smartsheet_client()
        .Passthrough.get(f"/sheets/{sheet_id}/rows/{row_id}", query_params=query or None)
        .data
    )


def cell_history_get(*, sheet_id: int, row_id: int, column_id: int) -> list:
    """A cell's history, newest first (costs 10 requests of the budget)."""
    result = smartsheet_client().Cells.get_cell_history(
        sheet_id, row_id, column_id, include_all=True
    )
    return list(result.data)


# --- Writes -----------------------------------------------------------------------------------


@dataclass
class RowFailure:
    """One row Smartsheet refused; `index` is its position in the caller's list."""

    index: int
    row_id: int | None
    error_code: int | None
    message: str


@dataclass
class BulkWriteResult:
    # The rows Smartsheet accepted: SDK Row objects (rows_add, rows_update) or the API's JSON
    # (rows_update_json).
    rows: list = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


@contextmanager
def sheet_write_lock(*, sheet_id: int) -> Iterator[None]:
    """Serialise writes to one sheet across processes (parallel writes get 500/4004)."""
    lock = fail_fast_redis().lock(
        f"{settings.REDIS_PREFIX}:sheets:write:{sheet_id}",
        timeout=settings.SMARTSHEET_WRITE_LOCK_TIMEOUT,
        blocking_timeout=settings.SMARTSHEET_WRITE_LOCK_TIMEOUT,
    )
    try:
        acquired = lock.acquire()
    except redis.RedisError as exc:
        logger.warning("Redis unreachable, no write lock for sheet %s: %s", sheet_id, exc)
        raise SmartsheetUnavailable(
            "Redis, which serialises writes to a sheet, does not answer"
        ) from exc
    if not acquired:
        raise SmartsheetUnavailable(
            f"another write to sheet {sheet_id} has held it for "
            f"{settings.SMARTSHEET_WRITE_LOCK_TIMEOUT} s",
            retry_after=settings.SMARTSHEET_WRITE_LOCK_TIMEOUT,
        )
    try:
        yield
    finally:
        try:
            lock.release()
        except Exception:  # expired while we wrote: nothing left to release
            logger.warning("write lock for sheet %s expired before release", sheet_id)


def _chunks(items: list, size: int) -> Iterable[tuple[int, list]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def _bulk_write(sheet_id: int, rows: list[dict], method: str) -> BulkWriteResult:
    outcome = BulkWriteResult()
    client = smartsheet_client()
    write = getattr(client.Sheets, method)
    with sheet_write_lock(sheet_id=sheet_id):
        for start, chunk in _chunks(rows, MAX_ROWS_PER_REQUEST):
            result = write(sheet_id, [smartsheet.models.Row(row) for row in chunk])
            outcome.rows.extend(result.result or [])
            if result.version is not None:
                outcome.version = int(result.version)
            for item in result.failed_items or []:
                index = start + int(item.index)
                error = item.error
                outcome.failures.append(
                    RowFailure(
                        index=index,
                        row_id=item.row_id or rows[index].get("id"),
                        error_code=error.error_code if error else None,
                        message=(error.message if error else "") or "rejected",
                    )
                )
    return outcome


def rows_add(*, sheet_id: int, rows: list[dict]) -> BulkWriteResult:
    """Add rows (dicts in API shape: {"toBottom": True, "cells": [{"columnId", "value"}]}).

    Sent ≤ 500 per request with allowPartialSuccess; refused rows come back in `failures`.
    """
    return _bulk_write(sheet_id, rows, "add_rows_with_partial_success")


def rows_update(*, sheet_id: int, rows: list[dict]) -> BulkWriteResult:
    """Update rows (dicts with "id" and "cells"); refused rows come back in `failures`."""
    return _bulk_write(sheet_id, rows, "update_rows_with_partial_success")


def rows_update_json(*, sheet_id: int, rows: list[dict]) -> BulkWriteResult:
    """`rows_update` without the SDK's typed models: `result.rows` are the API's JSON rows.

    For large writes (AI jobs): building and reading back typed Rows costs about 3 ms of CPU a
    row, more than the request itself. Same lock, limiter, breaker and retries (Passthrough).
    """
    outcome = BulkWriteResult()
    client = smartsheet_client()
    with sheet_write_lock(sheet_id=sheet_id):
        for start, chunk in _chunks(rows, MAX_ROWS_PER_REQUEST):
            answer = client.Passthrough.put(
                f"/sheets/{sheet_id}/rows",
                json.dumps(chunk),  # a string: the SDK's JSONObject takes no list
                query_params={"allowPartialSuccess": "true"},
            ).data
            outcome.rows.extend(answer.get("result") or [])
            if answer.get("version") is not None:
                outcome.version = int(answer["version"])
            for item in answer.get("failedItems") or []:
                index = start + int(item.get("index", 0))
                error = item.get("error") or {}
                outcome.failures.append(
                    RowFailure(
                        index=index,
                        row_id=item.get("rowId") or rows[index].get("id"),
                        error_code=error.get("errorCode"),
                        message=error.get("message") or "rejected",
                    )
                )
    return outcome


def rows_delete(*, sheet_id: int, row_ids: list[int]) -> list[int]:
    """Delete rows (and their children); ids already gone are ignored. Returns deleted ids."""
    deleted: list[int] = []
    client = smartsheet_client()
    with sheet_write_lock(sheet_id=sheet_id):
        # Ids travel in the query string; 300 keeps the URL well under common limits.
        for _, chunk in _chunks(list(row_ids), 300):
            result = client.Sheets.delete_rows(sheet_id, chunk, ignore_rows_not_found=True)
            # The SDK wraps each id in a NumberObjectValue.
            deleted.extend(int(getattr(i, "value", i)) for i in result.result or [])
    return deleted


def column_add(*, sheet_id: int, column: dict) -> dict[str, Any]:
    """Add one column (API shape: {"title", "type", "index", "options"?}); the created column's
    JSON (with its id)."""
    client = smartsheet_client()
    with sheet_write_lock(sheet_id=sheet_id):
        answer = client.Passthrough.post(f"/sheets/{sheet_id}/columns", column).data
    result = answer.get("result") if isinstance(answer, dict) else None
    return result[0] if isinstance(result, list) else result


# --- Webhooks ---------------------------------------------------------------------------------


def webhooks_list() -> list[smartsheet.models.Webhook]:
    return list(smartsheet_client().Webhooks.list_webhooks(page_size=1000).data)


def webhook_create(*, sheet_id: int, name: str, callback_url: str) -> smartsheet.models.Webhook:
    hook = smartsheet.models.Webhook(
        {
            "name": name,
            "callbackUrl": callback_url,
            "scope": "sheet",
            "scopeObjectId": sheet_id,
            "events": ["*.*"],
            "version": 1,
        }
    )
    return smartsheet_client().Webhooks.create_webhook(hook).result


def webhook_update(*, webhook_id: int, **fields: Any) -> smartsheet.models.Webhook:
    """PUT /webhooks/{id}; `enabled=True` makes Smartsheet send the verification challenge."""
    return (
        smartsheet_client()
        .Webhooks.update_webhook(webhook_id, smartsheet.models.Webhook(fields))
        .result
    )


def webhook_get(*, webhook_id: int) -> smartsheet.models.Webhook:
    return smartsheet_client().Webhooks.get_webhook(webhook_id)


def webhook_delete(*, webhook_id: int) -> None:
    smartsheet_client().Webhooks.delete_webhook(webhook_id)
