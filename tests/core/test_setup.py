from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.django_db
def test_ensure_demo_user_creates_demo_once_and_keeps_its_password(django_user_model):
    call_command("ensure_demo_user")
    call_command("ensure_demo_user")
    users = django_user_model.objects.filter(username="demo")
    assert users.count() == 1
    assert users.get().check_password("demo")


@pytest.mark.django_db
def test_in_sandbox_mode_the_demo_user_can_open_the_admin(client, django_user_model):
    call_command("ensure_demo_user")
    client.login(username="demo", password="demo")
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_an_existing_demo_user_becomes_staff_in_sandbox_mode(django_user_model):
    django_user_model.objects.create_user("demo", password="chosen-by-them")
    call_command("ensure_demo_user")
    demo = django_user_model.objects.get(username="demo")
    assert demo.is_staff and demo.is_superuser
    assert demo.check_password("chosen-by-them")


@pytest.mark.django_db
def test_outside_sandbox_mode_no_demo_user_gets_the_well_known_password(
    django_user_model, settings
):
    settings.SANDBOX = False
    call_command("ensure_demo_user")
    assert not django_user_model.objects.filter(username="demo").exists()


def test_outside_sandbox_mode_the_demo_user_is_not_staff(django_user_model, settings):
    settings.SANDBOX = False
    settings.DEMO_PASSWORD = "a-password-of-our-own"
    call_command("ensure_demo_user")
    demo = django_user_model.objects.get(username="demo")
    assert not demo.is_staff and not demo.is_superuser


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _compose() -> list[str]:
    """The compose CLI. CI (WORKBENCH_REQUIRE_SERVICES=1) fails rather than skips where the docker
    CLI exists, since scripts/test.sh installs docker-compose there; without docker at all the
    compose file cannot be checked, and the skip says so."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    reason = (
        "docker-compose.yml is NOT validated on this machine: neither `docker compose` nor "
        "`docker-compose` is installed (Debian: `apt-get install docker-compose`)."
    )
    if os.environ.get("WORKBENCH_REQUIRE_SERVICES") == "1" and shutil.which("docker"):
        pytest.fail(reason)
    pytest.skip(reason)


def _compose_config(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_compose(), "-f", str(ROOT / "docker-compose.yml"), *args, "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
    )


def _sandbox_flag_per_service(config: str) -> dict[str, str]:
    """{service: its SANDBOX value} from `compose config` output (YAML, no parser installed)."""
    flags: dict[str, str] = {}
    in_services, service = False, None
    for line in config.splitlines():
        if re.match(r"\S", line):
            in_services = line.strip() == "services:"
        elif in_services and (named := re.match(r"  ([\w-]+):\s*$", line)):
            service = named[1]
        elif service and (flag := re.match(r"\s+SANDBOX:\s*['\"]?(\w+)", line)):
            flags[service] = flag[1]
    return flags


def test_docker_compose_file_validates():
    result = _compose_config({"SECRET_KEY": "a-real-secret"})
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_run_without_a_secret_key():
    result = _compose_config({})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_docker_compose_runs_the_app_in_sandbox_mode_only_when_asked():
    production = _compose_config({"SECRET_KEY": "a-real-secret"}, "--profile", "sandbox")
    assert production.returncode == 0, production.stderr
    assert _sandbox_flag_per_service(production.stdout) == {
        "web": "false",
        "worker": "false",
        "beat": "false",
        "sandbox": "true",  # the sandbox service itself always is
    }
    trial = _compose_config({"SECRET_KEY": "x", "SANDBOX": "true"}, "--profile", "sandbox")
    assert set(_sandbox_flag_per_service(trial.stdout).values()) == {"true"}
