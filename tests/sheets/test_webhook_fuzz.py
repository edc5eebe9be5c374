"""Whatever arrives at the webhook URL, the answer is never a 500 (nor an exception)."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.sheets.conftest import WEBHOOK_SECRET, post_callback, sign

FUZZ = hypothesis_settings(
    # 60 examples a test keep the suite quick; a deeper search on demand:
    # WEBHOOK_FUZZ_EXAMPLES=2000 pytest tests/sheets/test_webhook_fuzz.py
    max_examples=int(os.environ.get("WEBHOOK_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
webhook_ids = st.just(555) | st.integers() | json_values
# Each key Smartsheet sends, present or not, well-formed or not.
payloads = st.fixed_dictionaries(
    {},
    optional={
        "webhookId": webhook_ids,
        "nonce": st.uuids().map(str) | st.text(max_size=120) | json_values,
        "events": st.lists(st.dictionaries(st.text(max_size=8), json_values), max_size=3)
        | json_values,
        "newWebhookStatus": st.sampled_from(["ENABLED", "DISABLED_BY_OWNER"])
        | st.text(max_size=50)
        | json_values,
        "challenge": st.text(max_size=30) | json_values,
        "timestamp": st.text(max_size=30),
    },
)
# A callback of our webhook with a fresh nonce, so the fuzzed parts reach the database.
near_valid = st.fixed_dictionaries(
    {"webhookId": st.just(555), "nonce": st.uuids().map(str)},
    optional={
        "events": st.lists(st.dictionaries(st.text(max_size=8), json_values), max_size=3),
        "newWebhookStatus": st.text(st.characters(codec="ascii"), max_size=45),
        "challenge": st.text(max_size=30),
    },
)
header_text = st.none() | st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40
)


def _assert_answered(response) -> None:
    assert response.status_code in (200, 400, 403), response.content
    answer = response.json()
    assert isinstance(answer, dict)
    if response.status_code == 400:
        assert 0 < len(answer["error"]) < 200


@FUZZ
@given(body=st.binary(max_size=400), challenge=header_text, signature=header_text)
def test_arbitrary_bytes_never_get_a_500(client, hooked, enqueued, body, challenge, signature):
    headers = {} if challenge is None else {"Smartsheet-Hook-Challenge": challenge}
    _assert_answered(post_callback(client, body, signature, **headers))


@FUZZ
@given(payload=payloads | near_valid, signed=st.booleans(), challenge=header_text)
def test_arbitrary_json_signed_or_not_never_gets_a_500(
    client, hooked, enqueued, payload, signed, challenge
):
    body = json.dumps(payload).encode()
    headers = {} if challenge is None else {"Smartsheet-Hook-Challenge": challenge}
    signature = sign(body, WEBHOOK_SECRET) if signed else None
    _assert_answered(post_callback(client, body, signature, **headers))


@FUZZ
@given(payload=payloads | near_valid, signed=st.booleans(), challenge=header_text)
def test_arbitrary_json_never_gets_a_500_while_redis_is_down(
    client, hooked, enqueued, private_redis, payload, signed, challenge
):
    private_redis.stop()
    body = json.dumps(payload).encode()
    headers = {} if challenge is None else {"Smartsheet-Hook-Challenge": challenge}
    signature = sign(body, WEBHOOK_SECRET) if signed else None
    _assert_answered(post_callback(client, body, signature, **headers))
