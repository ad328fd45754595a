"""docker-compose.yml and the Dockerfile, checked as far as no Docker engine is needed."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Read by the processes or by their images rather than by Limitflow's settings.
OTHER_VARIABLES = {
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "FLOWER_BASIC_AUTH",
    "RABBITMQ_DEFAULT_USER",
    "RABBITMQ_DEFAULT_PASS",
    "RABBITMQ_PASSWORD",
    "COMPOSE_PROFILES",
}


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_every_service_dependency_exists_and_waits_for_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dep, cond in (service.get("depends_on") or {}).items():
            assert dep in services and dep != name, f"{name} depends on {dep}"
            assert cond["condition"] in ("service_healthy", "service_completed_successfully")
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"


def test_commands_name_modules_that_exist() -> None:
    for name, service in compose()["services"].items():
        command = service.get("command") or []
        if command[:2] == ["python", "-m"]:
            module = command[2]
            assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
        if command[:3] == ["celery", "-A", "worker"]:
            assert command[3] in ("worker", "beat", "flower"), name


def test_environment_names_are_settings_limitflow_reads() -> None:
    known = set(Settings.model_fields) | OTHER_VARIABLES
    for name, service in compose()["services"].items():
        for key in service.get("environment") or {}:
            assert key in known, f"{name} sets {key}, which nothing reads"
    example = (ROOT / "ops" / "env.example").read_text()
    for key in re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE):
        assert key in known, f"ops/env.example sets {key}, which nothing reads"


def test_the_migration_runs_before_the_processes() -> None:
    services = compose()["services"]
    assert services["migrate"]["command"] == ["python", "-m", "worker", "migrate"]
    for name in ("worker", "beat", "orders-stream", "feed"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_dockerfile_copies_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_rabbitmq_is_an_opt_in_profile_with_a_healthcheck() -> None:
    services = compose()["services"]
    rabbit = services["rabbitmq"]
    assert rabbit["profiles"] == ["rabbitmq"]
    assert "rabbitmq-diagnostics" in rabbit["healthcheck"]["test"]
    assert rabbit["hostname"], "a fixed node name keeps the queued messages across recreation"
    assert any(v.endswith(":/var/lib/rabbitmq") for v in rabbit["volumes"])
    # Compose refuses to start a service that depends on one whose profile is off.
    for name, service in services.items():
        if "profiles" not in service:
            for dep in service.get("depends_on") or {}:
                assert "profiles" not in services[dep], f"{name} depends on opt-in {dep}"


def test_the_broker_is_redis_unless_env_says_otherwise() -> None:
    for name in ("worker", "beat", "orders-stream", "feed", "flower"):
        url = compose()["services"][name]["environment"]["CELERY_BROKER_URL"]
        assert url == "${CELERY_BROKER_URL:-redis://redis:6379/0}", name
    example = (ROOT / "ops" / "env.example").read_text()
    assert "# CELERY_BROKER_URL=amqp://limitflow:change-me@rabbitmq:5672//" in example


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
@pytest.mark.parametrize("profile", [None, "rabbitmq"])
def test_docker_compose_accepts_the_file(tmp_path: Path, profile: str | None) -> None:
    """Validate with Compose itself (``apt-get install docker-compose``; no engine needed)."""
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    env = (ROOT / "ops" / "env.example").read_text()
    if profile == "rabbitmq":
        env = env.replace("# COMPOSE_PROFILES=", "COMPOSE_PROFILES=")
        env = env.replace("# RABBITMQ_PASSWORD=", "RABBITMQ_PASSWORD=")
        env = env.replace("# CELERY_BROKER_URL=", "CELERY_BROKER_URL=")
    (tmp_path / ".env").write_text(env)
    done = subprocess.run(
        ["docker-compose", "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert config["services"]["rabbitmq"]["profiles"] == ["rabbitmq"]
    broker = config["services"]["worker"]["environment"]["CELERY_BROKER_URL"]
    if profile == "rabbitmq":
        assert broker == "amqp://limitflow:change-me@rabbitmq:5672//"
    else:
        assert broker == "redis://redis:6379/0"
