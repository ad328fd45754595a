"""docker-compose.yml and the Dockerfile, checked as far as no Docker engine is needed."""

from __future__ import annotations

import importlib.util
import json
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
    "GRAFANA_ADMIN_PASSWORD",
    "GF_SECURITY_ADMIN_USER",
    "GF_SECURITY_ADMIN_PASSWORD",
    "GF_AUTH_ANONYMOUS_ENABLED",
    "GF_USERS_ALLOW_SIGN_UP",
    "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
    "RABBITMQ_DEFAULT_USER",
    "RABBITMQ_DEFAULT_PASS",
    "RABBITMQ_PASSWORD",
    "COMPOSE_PROFILES",
}
LIMITFLOW_PROCESSES = ("worker", "notifier", "beat", "orders-stream", "feed")


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
    for name in LIMITFLOW_PROCESSES:
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_dockerfile_copies_what_exists() -> None:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_ports_are_published_on_loopback_only_and_flower_always_asks_for_a_login() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    flower = services["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_prometheus_scrapes_every_process_on_its_metrics_port() -> None:
    services = compose()["services"]
    config = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text())
    scraped: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                scraped[name] = sd["port"]
    for name in LIMITFLOW_PROCESSES:
        if name == "beat":
            continue  # beat only sends tasks: nothing to count
        port = int(services[name]["environment"]["METRICS_PORT"])
        assert scraped.get(name) == port, f"prometheus does not scrape {name}:{port}"
    for volume in services["prometheus"]["volumes"][:1] + services["grafana"]["volumes"][:2]:
        source = volume.split(":")[0]
        assert (ROOT / source).exists(), f"compose mounts missing {source}"


def test_the_workers_trade_and_the_notifier_sends_the_alerts() -> None:
    services = compose()["services"]
    assert services["worker"]["command"][-2:] == ["-Q", "limitflow"]
    assert ["-Q", "notify"] == services["notifier"]["command"][-4:-2]


def exported_metric_names() -> set[str]:
    source = "".join((ROOT / "worker" / f).read_text() for f in ("metrics.py", "metrics_server.py"))
    names = set(re.findall(r'"(limitflow_[a-z_]+)"', source))
    out = set(names)
    for name in names:  # what the exposition adds to counters and histograms
        out |= {f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return out


def test_the_dashboard_uses_the_provisioned_datasource_and_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "ops/grafana/dashboards/limitflow.json").read_text())
    datasources = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = datasources["datasources"][0]["uid"]
    exported = exported_metric_names()
    assert "limitflow_signals_total" in exported and "limitflow_open_positions" in exported
    used = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(limitflow_[a-z_]+)", target["expr"]))
    assert used and used <= exported, used - exported


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
    shutil.copytree(ROOT / "ops", tmp_path / "ops")  # the files Prometheus and Grafana mount
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
