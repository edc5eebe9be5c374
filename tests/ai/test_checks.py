"""The deployment check: check_ai, the worker at start, /readyz and the staff banner; settings."""

from __future__ import annotations

import json
import logging

import pytest
from celery.signals import worker_ready
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from ai.checks import deployments_check, deployments_check_and_log, on_worker_ready
from ai.models import DeploymentVerdict
from config.settings import _parse_azure_openai_deployments

pytestmark = pytest.mark.django_db


def _check_ai() -> tuple[str, CommandError | None]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("check_ai", stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def _verdicts() -> dict[str, str]:
    return {v.deployment: v.status for v in deployments_check()}


def test_check_ai_says_each_deployment_is_usable(ai):
    out, error = _check_ai()
    assert error is None
    assert "gpt-4o-mini (gpt-4o-mini): ok" in out
    assert "gpt-4o (gpt-4o): ok" in out
    assert "All deployments usable." in out
    # One token each.
    assert ai.stats()["services"]["openai"]["counters"]["completion_tokens"] == 2


def test_check_ai_names_a_missing_deployment_and_what_to_check(ai, settings):
    settings.AZURE_OPENAI_DEPLOYMENTS = {
        **settings.AZURE_OPENAI_DEPLOYMENTS,
        "gpt4o-prod": settings.AZURE_OPENAI_DEPLOYMENTS["gpt-4o"],
    }
    out, error = _check_ai()
    assert str(error) == "Not usable: gpt4o-prod."
    assert "gpt4o-prod (gpt-4o): not_found" in out
    assert "Deployments" in out
    assert "gpt-4o-mini (gpt-4o-mini): ok" in out


def test_check_ai_reports_refused_credentials(ai, settings):
    settings.AZURE_OPENAI_API_KEY = "wrong"
    out, error = _check_ai()
    assert error is not None
    assert "gpt-4o-mini (gpt-4o-mini): credentials" in out
    assert "check AZURE_OPENAI_API_KEY" in out


def test_a_throttled_deployment_is_valid_but_throttled(ai):
    ai.configure(
        openai={"per_deployment": {"gpt-4o": {"fail_rate": 1.0, "fail_kinds": ["rate_limit"]}}}
    )
    assert _verdicts() == {"gpt-4o-mini": "ok", "gpt-4o": "throttled"}
    out, error = _check_ai()
    assert error is None
    assert "gpt-4o (gpt-4o): throttled — valid, but throttled right now" in out


def test_an_endpoint_nobody_answers_is_unreachable(ai, settings):
    settings.AZURE_OPENAI_ENDPOINT = "http://127.0.0.1:9"
    assert _verdicts() == {"gpt-4o-mini": "unreachable", "gpt-4o": "unreachable"}


def test_readyz_reports_the_last_verdict_without_failing_readiness(ai, client, settings):
    DeploymentVerdict.objects.all().delete()  # the suite's own worker may have checked before
    assert (
        client.get("/readyz")
        .json()["checks"]["azure_openai"]["error"]
        .startswith("not checked yet")
    )
    deployments_check()
    body = client.get("/readyz").json()
    assert body["checks"]["azure_openai"] == {"status": "ok"}

    settings.AZURE_OPENAI_API_KEY = "wrong"
    deployments_check()
    response = client.get("/readyz")
    assert response.status_code == 200  # AI is not critical: pages still work without it
    check = response.json()["checks"]["azure_openai"]
    assert check["status"] == "down"
    assert "gpt-4o-mini: credentials" in check["error"]


def test_staff_see_a_banner_when_ai_is_misconfigured(ai, client, staff, alice, settings):
    client.force_login(staff)
    deployments_check()
    assert 'data-testid="ai-banner"' not in client.get("/").content.decode()

    settings.AZURE_OPENAI_API_KEY = "wrong"
    deployments_check()
    page = client.get("/").content.decode()
    assert 'data-testid="ai-banner"' in page
    assert "gpt-4o-mini: credentials" in page

    client.force_login(alice)
    assert 'data-testid="ai-banner"' not in client.get("/").content.decode()


def test_the_start_up_check_logs_what_to_fix_for_each_unusable_deployment(ai, settings, caplog):
    assert on_worker_ready in [r() for _, r in worker_ready.receivers]
    settings.AZURE_OPENAI_API_KEY = "wrong"
    with caplog.at_level(logging.ERROR, logger="ai.checks"):
        verdicts = deployments_check_and_log()
    assert [v.status for v in verdicts] == ["credentials", "credentials"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "gpt-4o-mini (gpt-4o-mini) is not usable" in errors[0]
    assert "AZURE_OPENAI_API_KEY" in errors[0]
    assert "manage.py check_ai" in errors[0]


GOOD = {
    "mini": {
        "model": "gpt-4o-mini",
        "rpm": 60,
        "tpm": 10_000,
        "input_per_1k": "0.00015",
        "output_per_1k": 0.0006,
    }
}


def test_deployments_settings_are_read_from_json():
    parsed = _parse_azure_openai_deployments(json.dumps(GOOD), "mini", "")
    assert parsed["mini"]["rpm"] == 60
    assert str(parsed["mini"]["output_per_1k"]) == "0.0006"


@pytest.mark.parametrize(
    ("raw", "primary", "fallback", "complaint"),
    [
        ("{not json", "mini", "", "not valid JSON"),
        ("[]", "mini", "", "must be a JSON object"),
        (json.dumps({"mini": {"model": "gpt-4o"}}), "mini", "", "must have exactly the keys"),
        (json.dumps({"mini": {**GOOD["mini"], "rpm": 0}}), "mini", "", r"rpm must be a whole"),
        (json.dumps({"mini": {**GOOD["mini"], "tpm": "lots"}}), "mini", "", "tpm must be"),
        (json.dumps({"mini": {**GOOD["mini"], "input_per_1k": "free"}}), "mini", "", "prices"),
        (json.dumps({"mini": {**GOOD["mini"], "output_per_1k": -1}}), "mini", "", "prices"),
        (json.dumps(GOOD), "gpt-4o", "", "AZURE_OPENAI_DEPLOYMENT='gpt-4o' is not described"),
        (json.dumps(GOOD), "mini", "big", "AZURE_OPENAI_FALLBACK_DEPLOYMENT='big'"),
    ],
)
def test_bad_deployments_settings_stop_the_start_saying_what_to_fix(
    raw, primary, fallback, complaint
):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        _parse_azure_openai_deployments(raw, primary, fallback)


def test_a_deployment_whose_model_is_not_a_base_model_stops_the_start(settings):
    from django.apps import apps

    settings.AZURE_OPENAI_DEPLOYMENTS = {"prod": {**GOOD["mini"], "model": "prod"}}
    with pytest.raises(ImproperlyConfigured, match=r"AZURE_OPENAI_DEPLOYMENTS\['prod'\]"):
        apps.get_app_config("ai").ready()
