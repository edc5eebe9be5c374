"""Per-deployment RPM/TPM limits as Azure enforces them, and the retry windows we announce.

Choices (documented for the client engineer):

- TPM is a sliding 60 s window. Each request is charged on arrival for its prompt tokens plus its
  `max_tokens` (or `default_max_tokens` when absent), as Azure charges an estimate up front.
- RPM is enforced on a short sliding window, as Azure does: `ceil(rpm * rpm_window_s / 60)`
  requests per `rpm_window_s` seconds (default 10 s, i.e. rpm/6 per 10 s). So a burst gets 429s
  below the per-minute figure, and a test can shrink the window to see limits clear quickly.
- A rejected request is not charged, so a client that waits `retry-after-ms` gets through.
- A request whose estimate alone exceeds the TPM limit can never fit; it gets a 429 announcing a
  full minute, which the openai package honours rather than hammering.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Verdict:
    allowed: bool
    limit_requests: int
    limit_tokens: int
    remaining_requests: int
    remaining_tokens: int
    retry_after_s: float = 0.0

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit_requests),
            "x-ratelimit-limit-tokens": str(self.limit_tokens),
            "x-ratelimit-remaining-requests": str(max(0, self.remaining_requests)),
            "x-ratelimit-remaining-tokens": str(max(0, self.remaining_tokens)),
        }


@dataclass
class DeploymentWindow:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    tokens_total: int = 0
    # End (monotonic time) of the latest retry window announced with a 429.
    retry_until: float = 0.0

    def expire(self, now: float, request_window: float) -> None:
        while self.requests and self.requests[0] <= now - request_window:
            self.requests.popleft()
        while self.tokens and self.tokens[0][0] <= now - 60.0:
            self.tokens_total -= self.tokens.popleft()[1]


def requests_per_window(rpm: int, window_s: float) -> int:
    return max(1, math.ceil(rpm * window_s / 60.0))


class RateLimiter:
    def __init__(self) -> None:
        self.windows: dict[str, DeploymentWindow] = {}

    def reset(self) -> None:
        self.windows = {}

    def window(self, deployment: str) -> DeploymentWindow:
        return self.windows.setdefault(deployment, DeploymentWindow())

    def peek(self, deployment: str, *, rpm: int, tpm: int, window_s: float, now: float) -> Verdict:
        """The current headroom, without charging anything (for responses refused earlier)."""
        w = self.window(deployment)
        w.expire(now, window_s)
        per_window = requests_per_window(rpm, window_s)
        return Verdict(True, rpm, tpm, per_window - len(w.requests), tpm - w.tokens_total)

    def acquire(
        self, deployment: str, *, cost: int, rpm: int, tpm: int, window_s: float, now: float
    ) -> Verdict:
        """Charge one request of `cost` tokens, or say how long until it would fit."""
        w = self.window(deployment)
        w.expire(now, window_s)
        per_window = requests_per_window(rpm, window_s)
        waits = []
        if len(w.requests) >= per_window:
            # The oldest requests must leave the window before one more fits.
            waits.append(w.requests[len(w.requests) - per_window] + window_s - now)
        if cost > tpm:
            waits.append(60.0)
        elif w.tokens_total + cost > tpm:
            freed = 0
            excess = w.tokens_total + cost - tpm
            for at, tokens in w.tokens:
                freed += tokens
                if freed >= excess:
                    waits.append(at + 60.0 - now)
                    break
        if waits:
            return Verdict(
                False,
                rpm,
                tpm,
                per_window - len(w.requests),
                tpm - w.tokens_total,
                retry_after_s=max(0.001, max(waits)),
            )
        w.requests.append(now)
        w.tokens.append((now, cost))
        w.tokens_total += cost
        return Verdict(True, rpm, tpm, per_window - len(w.requests), tpm - w.tokens_total)

    def announce_retry(self, deployment: str, until: float) -> None:
        w = self.window(deployment)
        w.retry_until = max(w.retry_until, until)

    def inside_retry_window(self, deployment: str, now: float) -> bool:
        return now < self.window(deployment).retry_until
