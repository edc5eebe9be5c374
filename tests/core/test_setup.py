from __future__ import annotations

import os
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
def test_outside_sandbox_mode_the_demo_user_is_not_staff(django_user_model, settings):
    settings.SANDBOX = False
    call_command("ensure_demo_user")
    demo = django_user_model.objects.get(username="demo")
    assert not demo.is_staff and not demo.is_superuser


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _compose() -> list[str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_compose(), "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
    )


def test_docker_compose_file_validates():
    result = _compose_config({"SECRET_KEY": "a-real-secret"})
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_run_without_a_secret_key():
    result = _compose_config({})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
