"""Production fails closed, the sandbox is explicit, and local runs keep working over plain http.

Most tests load config/settings.py afresh with a chosen environment; two run manage.py as a
person would, in a clean environment.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent.parent
SETTINGS_FILE = ROOT / "config" / "settings.py"
STRONG_KEY = "k3y-" + "a1b2c3d4e5" * 6
CREDENTIALS = {
    "SMARTSHEET_ACCESS_TOKEN": "real-token",
    "AZURE_OPENAI_API_KEY": "real-key",
    "AZURE_OPENAI_ENDPOINT": "https://workbench.openai.azure.com",
}
PRODUCTION = {"SECRET_KEY": STRONG_KEY, **CREDENTIALS}


def load_settings(monkeypatch, **environment: str) -> dict:
    """config/settings.py as it would load with only `environment` set."""
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', SETTINGS_FILE.read_text()))
    for name in read:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


def clean_env(**environment: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], **environment}


def test_without_credentials_or_sandbox_mode_the_app_refuses_to_start_naming_what_to_set(
    monkeypatch,
):
    with pytest.raises(ImproperlyConfigured) as refusal:
        load_settings(monkeypatch, SECRET_KEY=STRONG_KEY)
    message = str(refusal.value)
    for name in ("SMARTSHEET_ACCESS_TOKEN", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        assert name in message
    assert "SANDBOX=true" in message
    assert "SECRET_KEY" not in message


def test_debug_alone_does_not_put_the_app_on_the_sandbox(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="SMARTSHEET_ACCESS_TOKEN"):
        load_settings(monkeypatch, DEBUG="true")


def test_one_missing_credential_is_named_even_in_sandbox_mode(monkeypatch):
    with pytest.raises(ImproperlyConfigured) as refusal:
        load_settings(
            monkeypatch, SANDBOX="true", AZURE_OPENAI_ENDPOINT="https://x.openai.azure.com"
        )
    assert "AZURE_OPENAI_API_KEY is not set" in str(refusal.value)


@pytest.mark.parametrize(
    "secret_key",
    [None, "", "short-key", "x" * 60, "django-insecure-" + "a1b2c3d4e5" * 5],
    ids=["unset", "empty", "short", "one-character", "django-insecure"],
)
def test_production_refuses_a_development_or_weak_secret_key(monkeypatch, secret_key):
    environment = dict(CREDENTIALS)
    if secret_key is not None:
        environment["SECRET_KEY"] = secret_key
    with pytest.raises(ImproperlyConfigured, match=r"SECRET_KEY is (not set|too weak)"):
        load_settings(monkeypatch, **environment)


def test_debug_or_sandbox_mode_accept_the_development_secret_key(monkeypatch):
    assert load_settings(monkeypatch, DEBUG="true", **CREDENTIALS)["DEBUG"] is True
    assert load_settings(monkeypatch, SANDBOX="true")["SANDBOX"] is True


def test_in_production_the_https_protections_are_on_by_default(monkeypatch):
    settings = load_settings(monkeypatch, **PRODUCTION)
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["CSRF_COOKIE_SECURE"] is True
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_each_https_protection_can_be_switched_off_by_its_variable(monkeypatch):
    settings = load_settings(
        monkeypatch,
        **PRODUCTION,
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_PROXY_SSL_HEADER="false",
    )
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert settings["CSRF_COOKIE_SECURE"] is False
    assert settings["SECURE_SSL_REDIRECT"] is False
    assert settings["SECURE_HSTS_SECONDS"] == 0
    assert settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert settings["SECURE_PROXY_SSL_HEADER"] is None


def test_sandbox_mode_without_debug_keeps_plain_http_on_loopback_working(monkeypatch):
    settings = load_settings(monkeypatch, SANDBOX="true")
    assert settings["DEBUG"] is False
    assert settings["SESSION_COOKIE_SECURE"] is False
    assert settings["CSRF_COOKIE_SECURE"] is False
    assert settings["SECURE_SSL_REDIRECT"] is False
    assert settings["SECURE_HSTS_SECONDS"] == 0
    assert settings["SECURE_PROXY_SSL_HEADER"] is None


def test_sandbox_mode_points_both_services_at_the_sandbox_and_installs_it(monkeypatch):
    settings = load_settings(monkeypatch, SANDBOX="true", SANDBOX_PORT="9876")
    assert settings["SMARTSHEET_SANDBOX"] and settings["AZURE_OPENAI_SANDBOX"]
    assert settings["SMARTSHEET_API_BASE"] == "http://127.0.0.1:9876/2.0"
    assert settings["AZURE_OPENAI_ENDPOINT"] == "http://127.0.0.1:9876"
    assert "sandbox" in settings["INSTALLED_APPS"]


def test_in_production_the_sandbox_app_is_not_installed(monkeypatch):
    settings = load_settings(monkeypatch, **PRODUCTION)
    assert not settings["SANDBOX_MODE"]
    assert "sandbox" not in settings["INSTALLED_APPS"]
    assert settings["SMARTSHEET_API_BASE"] == "https://api.smartsheet.com/2.0"


def test_sandbox_mode_with_a_real_smartsheet_token_uses_real_smartsheet_and_the_sandbox_ai(
    monkeypatch,
):
    settings = load_settings(monkeypatch, SANDBOX="true", SMARTSHEET_ACCESS_TOKEN="real-token")
    assert not settings["SMARTSHEET_SANDBOX"]
    assert settings["SMARTSHEET_ACCESS_TOKEN"] == "real-token"
    assert settings["SMARTSHEET_API_BASE"] == "https://api.smartsheet.com/2.0"
    assert settings["AZURE_OPENAI_SANDBOX"]
    assert settings["SANDBOX_MODE"]


def test_the_default_webhook_callback_follows_web_port(monkeypatch):
    settings = load_settings(monkeypatch, SANDBOX="true", WEB_PORT="8123")
    assert settings["WEBHOOK_CALLBACK_URL"] == "http://127.0.0.1:8123/webhooks/smartsheet/"


def test_in_production_plain_http_is_sent_to_https_but_health_probes_are_answered(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    redirect = client.get("/accounts/login/")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://testserver/accounts/login/"
    assert client.get("/healthz").status_code == 200
    behind_proxy = client.get("/accounts/login/", headers={"x-forwarded-proto": "https"})
    assert behind_proxy.status_code == 301  # the header counts only when the setting says so
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/accounts/login/", headers={"x-forwarded-proto": "https"}).status_code == 200


def test_the_deploy_check_passes_with_only_a_secret_key_allowed_hosts_and_credentials():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_env(**PRODUCTION, ALLOWED_HOSTS="workbench.example.com"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_manage_py_without_any_configuration_refuses_and_says_what_to_set():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    for name in ("SECRET_KEY", "SMARTSHEET_ACCESS_TOKEN", "AZURE_OPENAI_API_KEY", "SANDBOX=true"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr
