"""Webhooks: registration, the verification challenge, and signed, coalesced, retried callbacks.

Each webhook has at most one delivery task, so callbacks for it go out one at a time and in order;
events that arrive while it waits (`webhook_coalesce_ms`) or delivers join the next callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from sandbox.smartsheet.model import ApiError, User, iso, missing_attribute, now, unparseable
from sandbox.state import SandboxState

SERVICE = "smartsheet"


@dataclass(eq=False)
class Webhook:
    id: int
    name: str
    callback_url: str
    scope_object_id: int
    events: list[str]
    version: int
    owner: User
    shared_secret: str
    created_at: datetime
    modified_at: datetime
    subscope: dict[str, Any] | None = None
    enabled: bool = False
    status: str = "NEW_NOT_VERIFIED"
    pending: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task | None = None
    callbacks_since_challenge: int = 0
    last_attempt: datetime | None = None
    last_attempt_retries: int = 0
    last_success: datetime | None = None

    def wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "scope": "sheet",
            "scopeObjectId": self.scope_object_id,
            "events": list(self.events),
            "callbackUrl": self.callback_url,
            "sharedSecret": self.shared_secret,
            "enabled": self.enabled,
            "status": self.status,
            "version": self.version,
            "createdAt": iso(self.created_at),
            "modifiedAt": iso(self.modified_at),
        }
        if self.subscope:
            data["subscope"] = self.subscope
        stats: dict[str, Any] = {"lastCallbackAttemptRetryCount": self.last_attempt_retries}
        if self.last_attempt:
            stats["lastCallbackAttempt"] = iso(self.last_attempt)
        if self.last_success:
            stats["lastSuccessfulCallback"] = iso(self.last_success)
        data["stats"] = stats
        return data


def check_callback_url(url: Any) -> str:
    """https anywhere; plain http only to loopback, where tests run their receivers."""
    if not isinstance(url, str) or not url:
        raise missing_attribute("webhook.callbackUrl")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        if host == "localhost":
            return url
        try:
            if ipaddress.ip_address(host).is_loopback:
                return url
        except ValueError:
            pass
    raise ApiError(400, 1152, "URL must have HTTPS.")


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDispatcher:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.webhooks: dict[int, Webhook] = {}
        self._client: httpx.AsyncClient | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.state.config[SERVICE]

    def client(self) -> httpx.AsyncClient:
        # Made inside the running loop; trust_env=False keeps proxy settings off loopback calls.
        if self._client is None:
            self._client = httpx.AsyncClient(trust_env=False)
        return self._client

    async def close(self) -> None:
        self.reset()
        if self._client is not None:
            await self._client.aclose()

    def reset(self) -> None:
        for webhook in self.webhooks.values():
            if webhook.task is not None:
                webhook.task.cancel()
        self.webhooks = {}

    # --- registration -------------------------------------------------------------------------

    def create(self, body: Any, *, user: User, new_id: Any, sheet_exists: Any) -> Webhook:
        if not isinstance(body, dict):
            raise unparseable("the webhook must be a JSON object.")
        for name in ("name", "callbackUrl", "scope", "scopeObjectId", "events", "version"):
            if body.get(name) in (None, "", []):
                raise missing_attribute(f"webhook.{name}")
        url = check_callback_url(body["callbackUrl"])
        if body["scope"] != "sheet":
            raise unparseable("the sandbox supports webhooks with scope 'sheet' only.")
        if body["events"] != ["*.*"]:
            raise unparseable('webhook.events must be ["*.*"].')
        if body["version"] != 1:
            raise unparseable("webhook.version must be 1.")
        if not isinstance(body["scopeObjectId"], int) or not sheet_exists(body["scopeObjectId"]):
            raise ApiError(404, 1151, "Scope object not found.")
        subscope = body.get("subscope")
        if subscope is not None and not (
            isinstance(subscope, dict) and isinstance(subscope.get("columnIds"), list)
        ):
            raise unparseable('webhook.subscope must be {"columnIds": [...]}.')
        moment = now()
        webhook = Webhook(
            id=new_id(),
            name=str(body["name"]),
            callback_url=url,
            scope_object_id=body["scopeObjectId"],
            events=["*.*"],
            version=1,
            owner=user,
            shared_secret=secrets.token_hex(16),
            created_at=moment,
            modified_at=moment,
            subscope=subscope,
        )
        self.webhooks[webhook.id] = webhook
        return webhook

    def get(self, webhook_id: int, user: User) -> Webhook:
        webhook = self.webhooks.get(webhook_id)
        if webhook is None or webhook.owner.id != user.id:
            raise ApiError(404, 1006, "Not Found")
        return webhook

    def owned_by(self, user: User) -> list[Webhook]:
        return [w for w in self.webhooks.values() if w.owner.id == user.id]

    async def update(self, webhook: Webhook, body: Any) -> Webhook:
        if not isinstance(body, dict):
            raise unparseable("the webhook must be a JSON object.")
        if "callbackUrl" in body and body["callbackUrl"] != webhook.callback_url:
            webhook.callback_url = check_callback_url(body["callbackUrl"])
            webhook.status, webhook.enabled = "NEW_NOT_VERIFIED", False
        if body.get("name"):
            webhook.name = str(body["name"])
        if "events" in body and body["events"] != ["*.*"]:
            raise unparseable('webhook.events must be ["*.*"].')
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise unparseable("webhook.enabled must be true or false.")
            if body["enabled"] and not webhook.enabled:
                # Smartsheet verifies before it answers the PUT.
                verified = await self._challenge(webhook)
                webhook.enabled = verified
                webhook.status = "ENABLED" if verified else "DISABLED_VERIFICATION_FAILED"
                webhook.callbacks_since_challenge = 0
            elif not body["enabled"] and webhook.enabled:
                self._stop(webhook)
                webhook.enabled, webhook.status = False, "DISABLED_BY_OWNER"
        webhook.modified_at = now()
        return webhook

    def delete(self, webhook: Webhook) -> None:
        self._stop(webhook)
        del self.webhooks[webhook.id]

    def reset_secret(self, webhook: Webhook) -> str:
        webhook.shared_secret = secrets.token_hex(16)
        webhook.modified_at = now()
        return webhook.shared_secret

    def scope_gone(self, sheet_id: int) -> None:
        for webhook in self.webhooks.values():
            if webhook.scope_object_id == sheet_id:
                was_enabled = webhook.enabled
                self._stop(webhook)
                self._disable(webhook, "DISABLED_SCOPE_INACCESSIBLE")
                if was_enabled:
                    webhook.task = asyncio.get_running_loop().create_task(
                        self._announce_status(webhook)
                    )

    def _stop(self, webhook: Webhook) -> None:
        webhook.pending = []
        if webhook.task is not None:
            webhook.task.cancel()
            webhook.task = None

    # --- delivery -----------------------------------------------------------------------------

    def emit(self, sheet_id: int, events: list[dict[str, Any]]) -> None:
        """Queue one change's events for every enabled webhook on the sheet."""
        for webhook in self.webhooks.values():
            if not webhook.enabled or webhook.scope_object_id != sheet_id:
                continue
            chosen = _in_subscope(webhook, events)
            if not chosen:
                continue
            webhook.pending.extend(chosen)
            if webhook.task is None or webhook.task.done():
                webhook.task = asyncio.get_running_loop().create_task(self._deliver(webhook))

    async def flush(self, timeout: float) -> bool:
        """Wait until no webhook has events queued or a callback in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            tasks = [w.task for w in self.webhooks.values() if w.task and not w.task.done()]
            if not tasks:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(tasks, timeout=remaining)

    async def _deliver(self, webhook: Webhook) -> None:
        while webhook.pending and webhook.enabled:
            # Smartsheet's delay (webhook_delay_ms, ~60 s in production) then the coalescing wait.
            await asyncio.sleep(self.config["webhook_delay_ms"] / 1000)
            await asyncio.sleep(self.config["webhook_coalesce_ms"] / 1000)
            if webhook.callbacks_since_challenge >= self.config["webhook_rechallenge_every"]:
                webhook.callbacks_since_challenge = 0
                if not await self._challenge(webhook):
                    self._disable(webhook, "DISABLED_VERIFICATION_FAILED")
                    await self._announce_status(webhook)
                    return
            events, webhook.pending = webhook.pending, []
            body = orjson.dumps(
                {
                    "nonce": str(uuid.uuid4()),
                    "timestamp": iso(now()),
                    "webhookId": webhook.id,
                    "scope": "sheet",
                    "scopeObjectId": webhook.scope_object_id,
                    "events": events,
                }
            )
            if not await self._post_with_retries(webhook, body):
                self._disable(webhook, "DISABLED_CALLBACK_FAILED")
                await self._announce_status(webhook)
                return
            webhook.callbacks_since_challenge += 1

    def _disable(self, webhook: Webhook, status: str) -> None:
        webhook.enabled, webhook.status = False, status
        webhook.pending = []
        webhook.modified_at = now()

    async def _announce_status(self, webhook: Webhook) -> None:
        """Smartsheet tells the subscriber when it disables a webhook by itself: one signed
        callback with `newWebhookStatus` instead of events (a failure is not retried)."""
        body = orjson.dumps(
            {
                "nonce": str(uuid.uuid4()),
                "timestamp": iso(now()),
                "webhookId": webhook.id,
                "scope": "sheet",
                "scopeObjectId": webhook.scope_object_id,
                "newWebhookStatus": webhook.status,
            }
        )
        self.state.stats.add(SERVICE, "webhook_status_callbacks")
        with contextlib.suppress(httpx.HTTPError):
            await self.client().post(
                webhook.callback_url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Smartsheet-Hmac-SHA256": sign(webhook.shared_secret, body),
                    "User-Agent": "Smartsheet-Sandbox-Webhooks",
                },
                timeout=self.config["webhook_timeout_ms"] / 1000,
            )

    async def _post_with_retries(self, webhook: Webhook, body: bytes) -> bool:
        config = self.config
        attempts = config["webhook_retry_attempts"]
        for attempt in range(attempts):
            webhook.last_attempt = now()
            webhook.last_attempt_retries = attempt
            self.state.stats.add(SERVICE, "webhook_callback_attempts")
            # Signed with the secret current at sending time: a reset secret applies at once.
            headers = {
                "Content-Type": "application/json",
                "Smartsheet-Hmac-SHA256": sign(webhook.shared_secret, body),
                "User-Agent": "Smartsheet-Sandbox-Webhooks",
            }
            try:
                response = await self.client().post(
                    webhook.callback_url,
                    content=body,
                    headers=headers,
                    timeout=config["webhook_timeout_ms"] / 1000,
                )
                status = response.status_code
            except httpx.HTTPError:
                status = None
            if status == 200:
                webhook.last_success = now()
                self.state.stats.add(SERVICE, "webhook_callbacks_sent")
                return True
            self.state.stats.add(SERVICE, "webhook_callbacks_failed")
            if status == 410:
                return False  # the subscriber says the hook is gone: no retries
            if attempt + 1 < attempts:
                delay = min(
                    config["webhook_retry_base_ms"] * 2**attempt, config["webhook_retry_max_ms"]
                )
                await asyncio.sleep(delay / 1000)
        return False

    async def _challenge(self, webhook: Webhook) -> bool:
        challenge = str(uuid.uuid4())
        self.state.stats.add(SERVICE, "webhook_challenges")
        try:
            response = await self.client().post(
                webhook.callback_url,
                content=orjson.dumps({"challenge": challenge, "webhookId": webhook.id}),
                headers={
                    "Content-Type": "application/json",
                    "Smartsheet-Hook-Challenge": challenge,
                },
                timeout=self.config["webhook_timeout_ms"] / 1000,
            )
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
        if response.headers.get("Smartsheet-Hook-Response") == challenge:
            return True
        try:
            answer = response.json()
        except ValueError:
            return False
        return isinstance(answer, dict) and answer.get("smartsheetHookResponse") == challenge


def _in_subscope(webhook: Webhook, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not webhook.subscope:
        return list(events)
    columns = set(webhook.subscope.get("columnIds") or [])
    cells = [e for e in events if e["objectType"] == "cell" and e["columnId"] in columns]
    if not cells:
        return []
    rows = {e["rowId"] for e in cells}
    return [
        e
        for e in events
        if e in cells
        or (e["objectType"] == "row" and e.get("id") in rows)
        or e["objectType"] == "sheet"
    ]
