"""The sandbox's shared frame: its config, its request statistics and its reset hook.

Both halves of the sandbox (Smartsheet and Azure OpenAI) hang off one `SandboxState`: they read
their section of `config` on every request (so a test can change behaviour at run time), record
every request in `stats`, and register with `on_reset` whatever they must forget on reset.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sandbox.faults import FaultQueue

SMARTSHEET_FAIL_CODES = (4001, 4002, 4003, 4004)

DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "smartsheet": {
        "rpm": 300,
        "latency_ms": 0,
        "fail_rate": 0.0,
        "fail_codes": [4004],
        # Webhook delivery, scaled down from Smartsheet's (14 attempts over hours) so a test that
        # lets a callback fail sees DISABLED_CALLBACK_FAILED within seconds.
        "webhook_coalesce_ms": 75,
        "webhook_retry_attempts": 14,
        "webhook_retry_base_ms": 200,
        "webhook_retry_max_ms": 1000,
        "webhook_timeout_ms": 5000,
        "webhook_rechallenge_every": 100,
        # Smartsheet batches changes and calls back about a minute after them; 0 keeps tests fast.
        "webhook_delay_ms": 0,
        # A second write to a sheet while one is in flight (same token) gets 500/4004.
        "concurrent_write_error": True,
    },
    "openai": {
        "rpm": 600,
        "tpm": 600000,
        "latency_ms": 0,
        "ms_per_token": 0,
        "fail_rate": 0.0,
        "fail_kinds": ["rate_limit"],
        "retry_after_ms": 1000,
        "content_filter_trigger": "FORBIDDEN-TOPIC",
        # Azure OpenAI half (sandbox/azure_openai): RPM is enforced per short window, a completion
        # filter trigger, how long an injected timeout holds, the TPM estimate without max_tokens.
        "rpm_window_s": 10.0,
        "completion_filter_trigger": "FILTER-COMPLETION",
        "timeout_ms": 5000,
        "default_max_tokens": 1024,
        "per_deployment": {},
    },
}


class ConfigError(ValueError):
    """A config change the sandbox refuses; the message says what to send instead."""


class SlidingWindow:
    """Weighted events in the last `seconds`; tracks the highest total ever seen in one window."""

    def __init__(self, seconds: float = 60.0) -> None:
        self.seconds = seconds
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0
        self.peak = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.seconds
        while self.events and self.events[0][0] <= horizon:
            self.total -= self.events.popleft()[1]

    def current(self, now: float | None = None) -> int:
        self._expire(time.monotonic() if now is None else now)
        return self.total

    def add(self, weight: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._expire(now)
        self.events.append((now, weight))
        self.total += weight
        self.peak = max(self.peak, self.total)


def _service_stats() -> dict[str, Any]:
    return {
        "requests": 0,
        "rate_limited": 0,
        "injected_failures": 0,
        "routes": {},
        "counters": {},
        "tokens": {},
        "window": SlidingWindow(),
    }


class Stats:
    """Request counts per service, route and token, with peak requests per sliding minute.

    `peak_rpm` counts every request a client sent (rate-limited ones too), weighted like the
    service's own rate limit (e.g. Smartsheet cell history counts 10), so a test can prove a
    client stayed under its budget.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._services: dict[str, dict[str, Any]] = {}

    def clear(self) -> None:
        with self._lock:
            self._services = {}

    def _service(self, service: str) -> dict[str, Any]:
        if service not in self._services:
            self._services[service] = _service_stats()
        return self._services[service]

    def record(
        self,
        service: str,
        route: str,
        *,
        token: str | None = None,
        rate_limited: bool = False,
        injected_failure: bool = False,
        weight: int = 1,
    ) -> None:
        now = time.monotonic()
        with self._lock:
            stats = self._service(service)
            stats["requests"] += 1
            stats["routes"][route] = stats["routes"].get(route, 0) + 1
            stats["rate_limited"] += bool(rate_limited)
            stats["injected_failures"] += bool(injected_failure)
            stats["window"].add(weight, now)
            if token is not None:
                per_token = stats["tokens"].get(token)
                if per_token is None:
                    per_token = stats["tokens"][token] = {
                        "requests": 0,
                        "rate_limited": 0,
                        "window": SlidingWindow(),
                    }
                per_token["requests"] += 1
                per_token["rate_limited"] += bool(rate_limited)
                per_token["window"].add(weight, now)

    def add(self, service: str, counter: str, n: int = 1) -> None:
        with self._lock:
            counters = self._service(service)["counters"]
            counters[counter] = counters.get(counter, 0) + n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            services = {}
            for name, stats in self._services.items():
                services[name] = {
                    "requests": stats["requests"],
                    "rate_limited": stats["rate_limited"],
                    "injected_failures": stats["injected_failures"],
                    "peak_rpm": stats["window"].peak,
                    "routes": dict(stats["routes"]),
                    "counters": dict(stats["counters"]),
                    "tokens": {
                        token: {
                            "requests": t["requests"],
                            "rate_limited": t["rate_limited"],
                            "peak_rpm": t["window"].peak,
                        }
                        for token, t in stats["tokens"].items()
                    },
                }
            return {"services": services}


class RequestLog:
    """The last `size` requests to Smartsheet and Azure OpenAI, with wall-clock times, so a test
    can tell when each arrived relative to a 429 (`GET /_sandbox/requests`)."""

    def __init__(self, size: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self, service: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._entries if service is None or e["service"] == service]


def _merge(base: dict[str, Any], partial: dict[str, Any], defaults: Any, path: str) -> None:
    """Deep-merge `partial` into `base`, refusing keys and types the defaults do not know.

    A dict whose default is empty (e.g. openai.per_deployment) takes any keys: its contents are
    the owner's business.
    """
    for key, value in partial.items():
        where = f"{path}.{key}" if path else key
        if isinstance(defaults, dict) and defaults and key not in defaults:
            known = ", ".join(sorted(defaults))
            raise ConfigError(f"Unknown config key {where!r}; known keys here: {known}.")
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if isinstance(default, dict) or (default is None and isinstance(base.get(key), dict)):
            if not isinstance(value, dict):
                raise ConfigError(f"Config key {where!r} must be an object.")
            target = base.setdefault(key, {})
            _merge(target, value, default or {}, where)
            continue
        if default is not None:
            _check_type(where, value, default)
        base[key] = copy.deepcopy(value)


def _check_type(where: str, value: Any, default: Any) -> None:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"Config key {where!r} must be of type {type(default).__name__}, got {value!r}."
        )


def _validate_smartsheet(section: dict[str, Any]) -> None:
    if section["rpm"] < 1:
        raise ConfigError("smartsheet.rpm must be at least 1 (requests per minute per token).")
    if not 0.0 <= section["fail_rate"] <= 1.0:
        raise ConfigError("smartsheet.fail_rate must be a probability between 0.0 and 1.0.")
    codes = section["fail_codes"]
    if not codes or any(code not in SMARTSHEET_FAIL_CODES for code in codes):
        raise ConfigError(
            "smartsheet.fail_codes must be a non-empty list drawn from 4001, 4002, 4003, 4004; "
            f"got {codes!r}."
        )
    for key in (
        "latency_ms",
        "webhook_coalesce_ms",
        "webhook_retry_base_ms",
        "webhook_retry_max_ms",
        "webhook_timeout_ms",
        "webhook_delay_ms",
    ):
        if section[key] < 0:
            raise ConfigError(f"smartsheet.{key} must not be negative.")
    for key in ("webhook_retry_attempts", "webhook_rechallenge_every"):
        if section[key] < 1:
            raise ConfigError(f"smartsheet.{key} must be at least 1.")


class SandboxState:
    """Everything the sandbox process shares: seed name, live config, stats, reset callbacks."""

    def __init__(self, seed: str = "demo") -> None:
        self.seed = seed
        self.config: dict[str, Any] = copy.deepcopy(DEFAULT_CONFIG)
        self.stats = Stats()
        self.requests = RequestLog()
        self.faults = FaultQueue()  # scripted faults (sandbox/faults.py)
        self._reset_callbacks: list[Callable[[], None]] = []
        # Each section may add checks beyond the type checks every key gets.
        self._validators: dict[str, list[Callable[[dict[str, Any]], None]]] = {
            "smartsheet": [_validate_smartsheet]
        }

    def add_validator(self, section: str, validator: Callable[[dict[str, Any]], None]) -> None:
        """Run `validator(merged_section)` on every config change; it raises ConfigError."""
        self._validators.setdefault(section, []).append(validator)

    def merge_config(self, partial: dict[str, Any]) -> dict[str, Any]:
        """Deep-merge a partial config and return the whole config; ConfigError leaves it as is."""
        if not isinstance(partial, dict):
            raise ConfigError('The config must be a JSON object such as {"smartsheet": {...}}.')
        merged = copy.deepcopy(self.config)
        _merge(merged, partial, DEFAULT_CONFIG, "")
        for section, validators in self._validators.items():
            if section in partial:
                for validator in validators:
                    validator(merged[section])
        self.config = merged
        return copy.deepcopy(self.config)

    def on_reset(self, callback: Callable[[], None]) -> None:
        self._reset_callbacks.append(callback)

    def reset(self) -> None:
        """Back to the seed: default config, zeroed stats, then every registered callback."""
        self.config = copy.deepcopy(DEFAULT_CONFIG)
        self.stats.clear()
        self.requests.clear()
        self.faults.reset()
        for callback in self._reset_callbacks:
            callback()
