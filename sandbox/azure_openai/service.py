"""Azure OpenAI chat completions over HTTP: auth, api-version, deployments, limits, faults, SSE.

Order of checks follows the real service: key, api-version, deployment, body, then (per
deployment) injected faults, rate limits, the prompt content filter, and finally the model.
Every response for a known deployment carries the four x-ratelimit-* headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sandbox.azure_openai import requests, tokens
from sandbox.azure_openai.faults import completion_filtered, cuts_streams, scripted_answer
from sandbox.azure_openai.limits import RateLimiter, Verdict
from sandbox.azure_openai.model import Reply, respond
from sandbox.state import DEFAULT_CONFIG, ConfigError, SandboxState

SERVICE = "openai"
ROUTE = "chat.completions"
API_KEY = "sandbox-key"
# Deployment name -> (base model, model version the service reports).
DEPLOYMENTS = {
    "gpt-4o-mini": ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    "gpt-4o": ("gpt-4o", "gpt-4o-2024-11-20"),
}
CONTEXT_WINDOW = 128_000
MAX_OUTPUT_TOKENS = requests.MAX_OUTPUT_TOKENS
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
FAIL_KINDS = ("rate_limit", "server_error", "timeout")
OVERRIDABLE = set(DEFAULT_CONFIG["openai"]) - {"per_deployment"}

SAFE = {"filtered": False, "severity": "safe"}
NOT_DETECTED = {"filtered": False, "detected": False}


def _prompt_filter(flagged: bool = False) -> dict[str, Any]:
    return {
        "hate": {"filtered": True, "severity": "high"} if flagged else SAFE,
        "jailbreak": NOT_DETECTED,
        "self_harm": SAFE,
        "sexual": SAFE,
        "violence": {"filtered": True, "severity": "medium"} if flagged else SAFE,
    }


def _completion_filter(flagged: bool = False) -> dict[str, Any]:
    return {
        "hate": SAFE,
        "protected_material_code": NOT_DETECTED,
        "protected_material_text": NOT_DETECTED,
        "self_harm": SAFE,
        "sexual": SAFE,
        "violence": {"filtered": True, "severity": "medium"} if flagged else SAFE,
    }


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _invalid(message: str, param: str | None = None, code: str | None = None) -> Response:
    """OpenAI-style 400, as Azure returns for a malformed request body."""
    return _json(
        400,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        },
    )


def validate_config(section: dict[str, Any]) -> None:
    """Checks beyond types, run by SandboxState on every change to the "openai" section."""
    checks = [section, *section["per_deployment"].values()]
    for name, override in section["per_deployment"].items():
        if name not in DEPLOYMENTS:
            raise ConfigError(
                f"openai.per_deployment.{name}: unknown deployment; use one of "
                f"{', '.join(DEPLOYMENTS)}."
            )
        if not isinstance(override, dict):
            raise ConfigError(f"openai.per_deployment.{name} must be an object.")
        unknown = set(override) - OVERRIDABLE
        if unknown:
            raise ConfigError(
                f"openai.per_deployment.{name}: unknown keys {sorted(unknown)}; known keys: "
                f"{', '.join(sorted(OVERRIDABLE))}."
            )
        for key, value in override.items():
            default = DEFAULT_CONFIG["openai"][key]
            if isinstance(default, (int, float)) and (
                not isinstance(value, (int, float)) or isinstance(value, bool)
            ):
                raise ConfigError(f"openai.per_deployment.{name}.{key} must be a number.")
            if isinstance(default, (str, list)) and not isinstance(value, type(default)):
                raise ConfigError(
                    f"openai.per_deployment.{name}.{key} must be a {type(default).__name__}."
                )
    for values in checks:
        if values.get("rpm", 1) < 1 or values.get("tpm", 1) < 1:
            raise ConfigError("openai rpm and tpm must be at least 1.")
        if not 0.0 <= values.get("fail_rate", 0.0) <= 1.0:
            raise ConfigError("openai fail_rate must be a probability between 0.0 and 1.0.")
        kinds = values.get("fail_kinds", ["rate_limit"])
        if not kinds or any(kind not in FAIL_KINDS for kind in kinds):
            raise ConfigError(
                f"openai fail_kinds must be a non-empty list drawn from {', '.join(FAIL_KINDS)}; "
                f"got {kinds!r}."
            )
        if values.get("rpm_window_s", 10.0) <= 0:
            raise ConfigError("openai rpm_window_s must be positive (Azure uses 1 s or 10 s).")
        for key in (
            "latency_ms",
            "ms_per_token",
            "retry_after_ms",
            "timeout_ms",
        ):
            if values.get(key, 0) < 0:
                raise ConfigError(f"openai {key} must not be negative.")


class AzureOpenAIService:
    """The Azure OpenAI half of the sandbox; one instance per sandbox process."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.limiter = RateLimiter()
        self._seed = f"openai:{state.seed}"
        self.rng = random.Random(self._seed)
        self._served = 0
        state.add_validator("openai", validate_config)
        state.on_reset(self.reset)

    def reset(self) -> None:
        self.limiter.reset()
        # Same seed, same sequence of injected faults after every reset.
        self.rng = random.Random(self._seed)
        self._served = 0

    def routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/openai/deployments/{deployment}/chat/completions",
                self.chat_completions,
                methods=["POST"],
            )
        ]

    # -- config and stats --------------------------------------------------------------------

    def settings(self, deployment: str) -> dict[str, Any]:
        section = self.state.config["openai"]
        merged = {k: v for k, v in section.items() if k != "per_deployment"}
        merged.update(section["per_deployment"].get(deployment, {}))
        return merged

    def _record(self, deployment: str | None, **flags: bool) -> None:
        stats = self.state.stats
        stats.record(SERVICE, ROUTE, **flags)
        if deployment:
            stats.add(SERVICE, f"requests.{deployment}")
            if flags.get("rate_limited"):
                stats.add(SERVICE, f"rate_limited.{deployment}")
            if flags.get("injected_failure"):
                stats.add(SERVICE, f"injected_failures.{deployment}")

    def _limit_headers(self, deployment: str, cfg: dict[str, Any], verdict: Verdict | None) -> dict:
        if verdict is None:
            verdict = self.limiter.peek(
                deployment,
                rpm=cfg["rpm"],
                tpm=cfg["tpm"],
                window_s=cfg["rpm_window_s"],
                now=time.monotonic(),
            )
        request_id = str(uuid.uuid4())
        return {
            **verdict.headers(),
            "apim-request-id": request_id,
            "x-request-id": request_id,
            "x-ms-region": "Sandbox",
            "x-ms-deployment-name": deployment,
        }

    def _too_many(self, deployment: str, wait_s: float, headers: dict[str, str]) -> Response:
        wait_ms = max(1, math.ceil(wait_s * 1000))
        # Remember the window we announced: a request inside it means a client ignored it.
        self.limiter.announce_retry(deployment, time.monotonic() + wait_ms / 1000)
        seconds = max(1, math.ceil(wait_ms / 1000))
        return _json(
            429,
            {
                "error": {
                    "code": "429",
                    "message": (
                        f"Rate limit is exceeded. Try again in {seconds} seconds. Requests to the "
                        f"ChatCompletions_Create Operation under Azure OpenAI API version have "
                        f"exceeded token rate limit of your current OpenAI S0 pricing tier."
                    ),
                }
            },
            {**headers, "retry-after-ms": str(wait_ms), "retry-after": str(seconds)},
        )

    # -- the endpoint --------------------------------------------------------------------------

    @cuts_streams
    async def chat_completions(self, request: Request) -> Response:
        if request.headers.get("api-key") != API_KEY:
            self._record(None)
            return _json(
                401,
                {
                    "error": {
                        "code": "401",
                        "message": (
                            "Access denied due to invalid subscription key or wrong API endpoint. "
                            "Make sure to provide a valid key for an active subscription and use "
                            "a correct regional API endpoint for your resource."
                        ),
                    }
                },
            )
        api_version = request.query_params.get("api-version")
        if not api_version:
            self._record(None)
            return _json(404, {"error": {"code": "404", "message": "Resource not found"}})
        if not API_VERSION.match(api_version):
            self._record(None)
            return _json(
                400, {"error": {"code": "BadRequest", "message": "API version not supported"}}
            )
        deployment = request.path_params["deployment"]
        if deployment not in DEPLOYMENTS:
            self._record(None)
            return _json(
                404,
                {
                    "error": {
                        "code": "DeploymentNotFound",
                        "message": (
                            "The API deployment for this resource does not exist. If you created "
                            "the deployment within the last 5 minutes, please wait a moment and "
                            "try again."
                        ),
                    }
                },
            )

        now = time.monotonic()
        if self.limiter.inside_retry_window(deployment, now):
            self.state.stats.add(SERVICE, "requests_inside_retry_window")
            self.state.stats.add(SERVICE, f"requests_inside_retry_window.{deployment}")
        cfg = self.settings(deployment)
        model, version = DEPLOYMENTS[deployment]

        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            self._record(deployment)
            return _invalid(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.)"
            )
        refused = (
            requests.body_problem(body)
            or requests.api_version_problem(body, api_version)
            or requests.tool_messages_problem(body["messages"])
            or requests.strict_problem(body)
        )
        if refused is not None:
            self._record(deployment)
            return _invalid(*refused)
        messages = body["messages"]
        tools = body.get("tools") or []
        response_format = body.get("response_format")
        prompt_tokens = tokens.count_prompt(messages, model, tools, response_format)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if prompt_tokens + (max_tokens or 0) > CONTEXT_WINDOW:
            self._record(deployment)
            return _invalid(
                f"This model's maximum context length is {CONTEXT_WINDOW} tokens. However, your "
                f"messages resulted in {prompt_tokens} tokens"
                + (f" ({max_tokens} in the completion)" if max_tokens else "")
                + ". Please reduce the length of the messages or completion.",
                param="messages",
                code="context_length_exceeded",
            )

        scripted = await scripted_answer(self, request, deployment, cfg)
        if scripted is not None:
            return scripted
        if cfg["fail_rate"] > 0 and self.rng.random() < cfg["fail_rate"]:
            kind = cfg["fail_kinds"][self.rng.randrange(len(cfg["fail_kinds"]))]
            return await self._injected(request, kind, deployment, cfg)

        cost = prompt_tokens + (max_tokens if max_tokens is not None else cfg["default_max_tokens"])
        verdict = self.limiter.acquire(
            deployment,
            cost=cost,
            rpm=cfg["rpm"],
            tpm=cfg["tpm"],
            window_s=cfg["rpm_window_s"],
            now=now,
        )
        headers = self._limit_headers(deployment, cfg, verdict)
        if not verdict.allowed:
            self._record(deployment, rate_limited=True)
            return self._too_many(deployment, verdict.retry_after_s, headers)

        self._record(deployment)
        self.state.stats.add(SERVICE, "prompt_tokens", prompt_tokens)
        prompt_text = "\n".join(tokens.content_text(m.get("content")) for m in messages)
        trigger = cfg["content_filter_trigger"]
        if trigger and trigger.lower() in prompt_text.lower():
            self.state.stats.add(SERVICE, "content_filtered_prompts")
            return _json(400, _prompt_filtered_body(), headers)

        if cfg["latency_ms"]:
            await asyncio.sleep(cfg["latency_ms"] / 1000)

        salt = hashlib.sha256(
            orjson.dumps(
                [messages, tools, body.get("tool_choice"), response_format],
                option=orjson.OPT_SORT_KEYS,
            )
        ).hexdigest()
        reply = respond(
            messages,
            tools=tools,
            tool_choice=body.get("tool_choice"),
            response_format=response_format,
            salt=salt,
            parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        )
        completion_trigger = cfg["completion_filter_trigger"]
        filtered = completion_filtered(request) or (
            bool(completion_trigger) and completion_trigger.lower() in prompt_text.lower()
        )
        forced = isinstance(body.get("tool_choice"), dict)
        outcome = _finish(reply, model, max_tokens, filtered, forced)
        if filtered:
            self.state.stats.add(SERVICE, "content_filtered_completions")
        n = 1 if body.get("stream") else max(1, int(body.get("n") or 1))
        completion_tokens = outcome.tokens * n
        self.state.stats.add(SERVICE, "completion_tokens", completion_tokens)
        usage = _usage(prompt_tokens, completion_tokens)
        self._served += 1
        ident = f"chatcmpl-{hashlib.sha256(f'{salt}:{self._served}'.encode()).hexdigest()[:29]}"
        common = {
            "created": int(time.time()),
            "id": ident,
            "model": version,
            "system_fingerprint": "fp_" + hashlib.sha256(version.encode()).hexdigest()[:10],
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._stream(outcome, common, usage, include_usage, cfg, model),
                headers={**headers, "cache-control": "no-cache"},
                media_type="text/event-stream",
            )
        if cfg["ms_per_token"] and outcome.tokens:
            await asyncio.sleep(cfg["ms_per_token"] * outcome.tokens / 1000)
        return _json(
            200,
            {
                "choices": [
                    {
                        "content_filter_results": _completion_filter(filtered),
                        "finish_reason": outcome.finish_reason,
                        "index": i,
                        "logprobs": None,
                        "message": outcome.message(),
                    }
                    for i in range(n)
                ],
                **common,
                "object": "chat.completion",
                "prompt_filter_results": [
                    {"prompt_index": 0, "content_filter_results": _prompt_filter()}
                ],
                "usage": usage,
            },
            headers,
        )

    async def _injected(
        self, request: Request, kind: str, deployment: str, cfg: dict[str, Any]
    ) -> Response:
        self._record(deployment, injected_failure=True)
        self.state.stats.add(SERVICE, f"injected.{kind}")
        headers = self._limit_headers(deployment, cfg, None)
        if kind == "rate_limit":
            return self._too_many(deployment, cfg["retry_after_ms"] / 1000, headers)
        if kind == "server_error":
            return _json(
                500,
                {
                    "error": {
                        "message": (
                            "The server had an error while processing your request. Sorry about "
                            "that! You can retry your request, or contact us through an Azure "
                            "support request if the error persists."
                        ),
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
                headers,
            )
        # A timeout holds the request (without blocking the loop) until the configured time or
        # until the client gives up, whichever comes first.
        deadline = time.monotonic() + cfg["timeout_ms"] / 1000
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                break
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return _json(
            408, {"error": {"code": "Timeout", "message": "The operation was timeout."}}, headers
        )

    async def _stream(
        self,
        outcome: Outcome,
        common: dict[str, Any],
        usage: dict[str, Any],
        include_usage: bool,
        cfg: dict[str, Any],
        model: str,
    ) -> AsyncIterator[bytes]:
        delay = cfg["ms_per_token"] / 1000
        extra = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None, filters: Any = None) -> bytes:
            payload = {
                "choices": [
                    {
                        "content_filter_results": {} if filters is None else filters,
                        "delta": delta,
                        "finish_reason": finish,
                        "index": 0,
                        "logprobs": None,
                    }
                ],
                **common,
                "object": "chat.completion.chunk",
                **extra,
            }
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        # Azure's first chunk: no choices, only the prompt's filter results.
        first = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": _prompt_filter()}
            ],
        }
        yield b"data: " + orjson.dumps(first) + b"\n\n"
        if outcome.tool_calls:
            yield chunk({"role": "assistant", "content": None, "refusal": None})
            for index, call in enumerate(outcome.tool_calls):
                function = call["function"]
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": function["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                pieces = tokens.split_tokens(function["arguments"], model)
                for start in range(0, len(pieces), 4):
                    if delay:
                        await asyncio.sleep(delay * len(pieces[start : start + 4]))
                    yield chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "function": {"arguments": "".join(pieces[start : start + 4])},
                                }
                            ]
                        }
                    )
        else:
            yield chunk({"content": "", "refusal": None, "role": "assistant"})
            for piece in tokens.split_tokens(outcome.content or "", model):
                if delay:
                    await asyncio.sleep(delay)
                yield chunk({"content": piece}, filters=_completion_filter())
        yield chunk(
            {},
            outcome.finish_reason,
            _completion_filter(True) if outcome.finish_reason == "content_filter" else None,
        )
        if include_usage:
            tail = {
                "choices": [],
                **common,
                "object": "chat.completion.chunk",
                "usage": usage,
            }
            yield b"data: " + orjson.dumps(tail) + b"\n\n"
        yield b"data: [DONE]\n\n"


class Outcome:
    """A reply after max_tokens and the completion filter: what the client receives."""

    def __init__(
        self,
        content: str | None,
        tool_calls: list[dict[str, Any]],
        finish_reason: str,
        token_count: int,
    ) -> None:
        self.content = content
        self.tool_calls = tool_calls
        self.finish_reason = finish_reason
        self.tokens = token_count

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "annotations": [],
            "content": self.content,
            "refusal": None,
            "role": "assistant",
        }
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


def _finish(
    reply: Reply, model: str, max_tokens: int | None, filtered: bool, forced: bool
) -> Outcome:
    limit = max_tokens if max_tokens is not None else MAX_OUTPUT_TOKENS
    if reply.tool_calls:
        calls = []
        used = 0
        finish = "stop" if forced else "tool_calls"  # OpenAI reports "stop" for a forced call
        for call in reply.tool_calls:
            arguments = call["function"]["arguments"]
            cost = tokens.count(call["function"]["name"], model) + tokens.TOKENS_PER_MESSAGE
            arg_tokens = tokens.count(arguments, model)
            if used + cost + arg_tokens > limit:
                arguments = tokens.truncate(arguments, max(0, limit - used - cost), model)
                arg_tokens = tokens.count(arguments, model)
                finish = "length"
            used += cost + arg_tokens
            calls.append({**call, "function": {**call["function"], "arguments": arguments}})
            if finish == "length":
                break
        return Outcome(None, calls, finish, min(used, max(limit, 1)))
    content = reply.content or ""
    count = tokens.count(content, model)
    finish = "stop"
    if filtered:
        # The filter stops generation part-way: keep the first third, as a client would see it.
        content = tokens.truncate(content, count // 3, model)
        count = tokens.count(content, model)
        finish = "content_filter"
    if count > limit:
        content = tokens.truncate(content, limit, model)
        count = tokens.count(content, model)
        finish = "length"
    return Outcome(content, [], finish, count)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "completion_tokens": completion_tokens,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _prompt_filtered_body() -> dict[str, Any]:
    return {
        "error": {
            "message": (
                "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy. Please modify your prompt and retry. To learn more about our "
                "content filtering policies please read our documentation: "
                "https://go.microsoft.com/fwlink/?linkid=2198766"
            ),
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": _prompt_filter(flagged=True),
            },
        }
    }
