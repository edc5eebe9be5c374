"""The Smartsheet webhook receiver: judge one request to /webhooks/smartsheet/ and answer it.

Smartsheet sends three kinds of request (its webhook guides, "Webhook verification" and
"Webhook callbacks"):

- a verification request: header `Smartsheet-Hook-Challenge: v`, body exactly
  `{"challenge": v, "webhookId": id}`; answered 200 with `v` echoed in the
  `Smartsheet-Hook-Response` header and a `{"smartsheetHookResponse": v}` body;
- an event callback: `{nonce, timestamp, webhookId, scope, scopeObjectId, events: [...]}`;
- a status-change callback: the same with `newWebhookStatus` instead of `events`.

Callbacks are signed: `Smartsheet-Hmac-SHA256` is the hex HMAC-SHA256 of the raw body keyed by
the webhook's sharedSecret. Any answer but 200 is retried (14 times), then the webhook is
disabled, so a genuine callback gets 200 whenever its effect is safe: replays, and Redis being
down, included.

The checks run cheapest first:
1. shape (400 with a short JSON error): malformed input never reaches the database;
2. whose webhook, and the signature (403): refusals are counted in Redis; at most one per kind
   and sample period is stored (`WebhookRejection`), so forged traffic costs no database write;
3. the nonce, stored in the database in the same transaction as the callback's effect, so a
   replay is recognised even after Redis restarts empty;
4. the effect: a debounced sync queued through Redis and Celery; when that cannot be done the
   sheet is marked `sync_requested_at` and the poller syncs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from core.ratelimit import redis_client
from sheets.client import SmartsheetUnavailable
from sheets.models import Sheet, WebhookNonce, WebhookRejection
from sheets.sync import sheet_sync_pending_clear, sheet_sync_request

logger = logging.getLogger(__name__)

BIGINT_MAX = 2**63 - 1
# Challenges are echoed into a response header and nonces stored: printable ASCII only (both are
# UUIDs in practice), which also keeps NUL bytes and line breaks out of the database and headers.
_CHALLENGE = re.compile(r"[\x21-\x7e]{1,200}")
_NONCE = re.compile(r"[\x21-\x7e]{1,100}")
_STATUS = re.compile(r"[A-Z_]{1,40}")
# Statuses in which Smartsheet challenges a webhook: ENABLED (re-verification every 100
# callbacks), and those from which its owner (register_webhooks) enables it. A challenge for any
# other is not part of enabling one of ours, so it is not answered.
CHALLENGE_STATUSES = frozenset(
    {
        "ENABLED",
        "NEW_NOT_VERIFIED",
        "DISABLED_BY_OWNER",
        "DISABLED_CALLBACK_FAILED",
        "DISABLED_VERIFICATION_FAILED",
    }
)
# Every outcome is counted here (a Redis hash: outcome -> count), for the admin.
OUTCOMES = (
    "accepted",
    "replayed",
    "challenge_answered",
    "malformed",
    *WebhookRejection.Reason.values,
)


@dataclass
class WebhookAnswer:
    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def signature_valid(*, secret: str, body: bytes, signature: str | None) -> bool:
    """HMAC-SHA256 of the raw body, hex, compared case-insensitively in constant time."""
    if not secret or not signature:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace"))


def webhook_callback_receive(
    *, body: bytes, challenge: str | None, signature: str | None, remote_addr: str | None
) -> WebhookAnswer:
    """Judge one request; what it returns is what the view answers. Never raises for bad input."""
    try:
        # orjson, not json: it refuses nesting past 1,024 levels (json.loads recurses until
        # RecursionError), invalid UTF-8, lone surrogates and NaN.
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _malformed("the body is not JSON")
    if not isinstance(payload, dict):
        return _malformed("the body must be a JSON object")
    webhook_id = payload.get("webhookId")
    if type(webhook_id) is not int or not 0 < webhook_id <= BIGINT_MAX:
        return _malformed("webhookId must be a webhook id (a positive 64-bit number)")
    if challenge is not None:
        return _challenge_answer(payload, challenge, signature, body, remote_addr)
    return _callback_accept(payload, signature, body, remote_addr)


def webhook_callback_counts() -> dict[str, int]:
    """How many requests ended each way since Redis last started ({} when Redis is down)."""
    try:
        raw = redis_client().hgetall(_counts_key())
    except RedisError:
        return {}
    counts = {name.decode(): int(value) for name, value in raw.items()}
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


# --- the three kinds of request ---------------------------------------------------------------


def _challenge_answer(
    payload: dict, challenge: str, signature: str | None, body: bytes, remote_addr: str | None
) -> WebhookAnswer:
    if set(payload) != {"challenge", "webhookId"} or payload["challenge"] != challenge:
        return _malformed(
            "a verification request carries only challenge and webhookId, the challenge"
            " repeating the Smartsheet-Hook-Challenge header"
        )
    if not _CHALLENGE.fullmatch(challenge):
        return _malformed("the challenge must be 1 to 200 printable ASCII characters")
    webhook_id = payload["webhookId"]
    sheet = _sheet_of(webhook_id)
    if sheet is None:
        return _refuse(WebhookRejection.Reason.UNKNOWN_WEBHOOK, webhook_id, None, body, remote_addr)
    # Whether Smartsheet signs challenges is unconfirmed: a signed one must verify.
    if signature and not signature_valid(
        secret=sheet.webhook_shared_secret, body=body, signature=signature
    ):
        return _refuse(WebhookRejection.Reason.BAD_SIGNATURE, webhook_id, sheet, body, remote_addr)
    # Without the secret every callback would be refused: better left disabled (and polled).
    if sheet.webhook_status not in CHALLENGE_STATUSES or not sheet.webhook_shared_secret:
        return _refuse(
            WebhookRejection.Reason.CHALLENGE_REFUSED, webhook_id, sheet, body, remote_addr
        )
    _count("challenge_answered")
    return WebhookAnswer(
        200, {"smartsheetHookResponse": challenge}, {"Smartsheet-Hook-Response": challenge}
    )


def _callback_accept(
    payload: dict, signature: str | None, body: bytes, remote_addr: str | None
) -> WebhookAnswer:
    webhook_id = payload["webhookId"]
    nonce = payload.get("nonce")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        return _malformed("nonce is missing or not 1 to 100 printable ASCII characters")
    events, new_status = payload.get("events"), payload.get("newWebhookStatus")
    if events is None and new_status is None:
        return _malformed("a callback carries events or newWebhookStatus")
    if events is not None and not (
        isinstance(events, list) and all(isinstance(event, dict) for event in events)
    ):
        return _malformed("events must be a list of objects")
    if new_status is not None and not (
        isinstance(new_status, str) and _STATUS.fullmatch(new_status)
    ):
        return _malformed("newWebhookStatus must be a webhook status such as ENABLED")

    sheet = _sheet_of(webhook_id)
    if sheet is None:
        return _refuse(WebhookRejection.Reason.UNKNOWN_WEBHOOK, webhook_id, None, body, remote_addr)
    if not signature_valid(secret=sheet.webhook_shared_secret, body=body, signature=signature):
        return _refuse(WebhookRejection.Reason.BAD_SIGNATURE, webhook_id, sheet, body, remote_addr)

    with transaction.atomic():
        if not _nonce_first_use(webhook_id, nonce):
            logger.info("webhook %s: replayed nonce %s ignored", webhook_id, nonce)
            _count("replayed")
            return WebhookAnswer(200, {"status": "replay ignored"})
        answer = WebhookAnswer(200, {"status": "noted"})
        if new_status is not None:
            Sheet.objects.filter(pk=sheet.pk).update(webhook_status=new_status)
            logger.warning("webhook %s of sheet %s is now %s", webhook_id, sheet.pk, new_status)
        # Status callbacks carry no events; should one ever carry both, the events count too.
        if events and not _only_our_own(events):
            answer = _sync_ask(sheet.pk)
        elif events:
            # Our own writes (grid, jobs, chat): the mirror took them when they were made.
            answer = WebhookAnswer(200, {"status": "own change"})
    WebhookNonce.objects.filter(
        received_at__lt=timezone.now() - timedelta(seconds=settings.WEBHOOK_NONCE_TTL)
    ).delete()
    _count("accepted")
    return answer


# --- helpers ----------------------------------------------------------------------------------


def _sheet_of(webhook_id: int) -> Sheet | None:
    return (
        Sheet.objects.filter(webhook_id=webhook_id)
        .only("pk", "webhook_shared_secret", "webhook_status")
        .first()
    )


def _nonce_first_use(webhook_id: int, nonce: str) -> bool:
    try:
        with transaction.atomic():
            WebhookNonce.objects.create(webhook_id=webhook_id, nonce=nonce)
    except IntegrityError:
        return False
    return True


def _only_our_own(events: list[dict]) -> bool:
    return all(event.get("changeAgent") == settings.SMARTSHEET_CHANGE_AGENT for event in events)


def _sync_ask(sheet_id: int) -> WebhookAnswer:
    try:
        sheet_sync_request(sheet_id=sheet_id)
    except (RedisError, OperationalError, SmartsheetUnavailable) as exc:
        # SmartsheetUnavailable: the sync's own Redis keys are out of reach. Answering 500
        # would make Smartsheet retry and, after 14 failures, disable the webhook; the
        # durable mark lets the poller do the sync instead.
        Sheet.objects.filter(pk=sheet_id).update(sync_requested_at=timezone.now())
        # When only the broker failed, the debounce key would make the next callbacks believe
        # a sync is queued.
        with contextlib.suppress(RedisError, SmartsheetUnavailable):
            sheet_sync_pending_clear(sheet_id=sheet_id)
        logger.warning(
            "sheet %s changed, but its sync could not be queued (%s); the poller will sync it",
            sheet_id,
            exc,
        )
        return WebhookAnswer(200, {"status": "sync requested"})
    return WebhookAnswer(200, {"status": "sync scheduled"})


def _malformed(error: str) -> WebhookAnswer:
    _count("malformed")
    logger.debug("webhook request refused as malformed: %s", error)
    return WebhookAnswer(400, {"error": error})


def _refuse(
    reason: str, webhook_id: int, sheet: Sheet | None, body: bytes, remote_addr: str | None
) -> WebhookAnswer:
    """403; counted in Redis, and stored only as the first of its kind in a sample period.

    A kind is the reason plus the webhook when it is ours, so a flood aimed at made-up ids
    cannot hide a refused callback of one of ours (its secret was reset, say).
    """
    kind = f"{reason}:{webhook_id if sheet is not None else '*'}"
    count = _refusal_sampled(reason, kind)
    if count:
        WebhookRejection.objects.create(
            reason=reason,
            webhook_id=webhook_id,
            remote_addr=_ip_or_none(remote_addr),
            # PostgreSQL text cannot hold NUL.
            body_excerpt=body[:500].decode("utf-8", "replace").replace("\x00", "\ufffd"),
            count=count,
        )
        WebhookRejection.objects.filter(
            received_at__lt=timezone.now() - timedelta(days=settings.WEBHOOK_REJECTION_DAYS)
        ).delete()
        logger.warning(
            "webhook callback refused: %s (webhook %s from %s; %d of this kind since the last"
            " record)",
            reason,
            webhook_id,
            remote_addr,
            count,
        )
    return WebhookAnswer(403, {"error": "refused"})


def _refusal_sampled(reason: str, kind: str) -> int | None:
    """Count one refusal; when it opens a new sample period, how many it stands for.

    None when it is not to be stored, or when Redis is down: then nothing is stored, so a flood
    during an outage still costs no database write.
    """
    prefix = f"{settings.REDIS_PREFIX}:sheets:webhook-refused"
    since_key = f"{prefix}:since:{kind}"
    try:
        redis = redis_client()
        pipe = redis.pipeline(transaction=False)
        pipe.hincrby(_counts_key(), reason, 1)
        pipe.incr(since_key)
        pipe.expire(since_key, settings.WEBHOOK_REJECTION_DAYS * 86400)
        pipe.set(f"{prefix}:gate:{kind}", 1, nx=True, ex=settings.WEBHOOK_REJECTION_SAMPLE_SECONDS)
        opened = pipe.execute()[-1]
        if not opened:
            return None
        return int(redis.getdel(since_key) or 1)
    except RedisError as exc:
        logger.warning("webhook callback refused (%s); not recorded, Redis is down: %s", kind, exc)
        return None


def _count(outcome: str) -> None:
    with contextlib.suppress(RedisError):  # a statistic; the answer matters more
        redis_client().hincrby(_counts_key(), outcome, 1)


def _counts_key() -> str:
    return f"{settings.REDIS_PREFIX}:sheets:webhook-outcomes"


def _ip_or_none(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value or ""))
    except ValueError:
        return None
