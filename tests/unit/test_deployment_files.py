"""docker-compose.yml and the Dockerfile, checked as far as no Docker engine is needed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Read by the processes or by their images rather than by Limitflow's settings.
OTHER_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "FLOWER_BASIC_AUTH"}


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
