"""docker/compose.yaml and docker/Dockerfile, read (no Docker daemon here): valid against the Compose
Specification's JSON schema, and deployable: healthchecks, restart policies, migrations before
anything starts, secrets from the env file, volumes, non-root images on one Python version."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
# schema/compose-spec.json of github.com/compose-spec/compose-spec (tests/fixtures/compose-spec/NOTICE.md)
SPEC = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
APP_SERVICES = {"web", "worker-cpu", "worker-datasets", "worker-gpu"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_the_compose_file_is_valid_against_the_compose_specification(compose):
    validator = jsonschema.Draft7Validator(json.loads(SPEC.read_text()))
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(compose)]
    assert errors == []
    # and the schema does catch a mistake
    broken = {**compose, "services": {**compose["services"], "web": {**compose["services"]["web"], "restart": 3}}}
    assert list(validator.iter_errors(broken))


def test_every_service_has_a_healthcheck_and_a_restart_policy(compose):
    for name, service in compose["services"].items():
        if name == "migrate":
            continue
        assert service.get("restart") == "unless-stopped", name
        healthcheck = service.get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable"), name


def test_web_and_workers_start_after_the_migrations_succeed(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"][-2:] == ["migrate", "--noinput"] and migrate["restart"] == "no"
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy", name
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "migrate" not in dockerfile.split("CMD", 1)[1], "the web image no longer migrates on start"


def test_secrets_come_from_the_env_file_and_the_example_names_them_all(compose):
    text = (DOCKER / "compose.yaml").read_text()
    example = (DOCKER / ".env.example").read_text()
    example_names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        for key in ("POSTGRES_PASSWORD", "SECRET_KEY", "NETFORGE_METRICS_TOKEN"):
            assert key not in environment, (name, key, "a secret written into the compose file")
        if name in APP_SERVICES | {"migrate", "postgres"}:
            assert service["env_file"] == [{"path": ".env", "required": True}], name
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", text))
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert "POSTGRES_PASSWORD" in required
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "NETFORGE_METRICS_TOKEN"} | required <= example_names
    assert {"ALLOWED_HOSTS", "NETFORGE_DISTRIBUTED_HOST"} <= interpolated & example_names
    assert (ROOT / ".gitignore").read_text().count("docker/.env") == 1


def test_postgres_redis_and_netforge_home_keep_their_data_in_volumes(compose):
    services = compose["services"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"] and "--appendonly" in services["redis"]["command"]
    for name in APP_SERVICES:
        assert "netforge-data:/data" in services[name]["volumes"], name
    assert {"netforge-data", "postgres-data", "redis-data"} <= set(compose["volumes"])


def test_the_images_run_as_netforge_on_one_python_version(compose):
    dockerfile = (DOCKER / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]
    by_name = {stage.split("\n", 1)[0].split(" AS ")[-1].strip(): stage for stage in stages}
    for name in ("base", "gpu"):
        users = re.findall(r"^USER (\S+)", by_name[name], re.MULTILINE)
        assert users and users[-1] == "netforge", name
        assert "PYTHON_VERSION" in by_name[name], name
    assert by_name["base"].startswith("python:${PYTHON_VERSION}-slim")
    assert 'python${PYTHON_VERSION}" -m venv' in by_name["gpu"]
    assert re.search(r"^ARG PYTHON_VERSION=3\.\d+$", dockerfile, re.MULTILINE)
    versions = {service["build"]["args"]["PYTHON_VERSION"] for service in compose["services"].values()
                if "build" in service}
    assert len(versions) == 1
    assert os.access(DOCKER / "entrypoint.sh", os.X_OK)


def advertised_by_entrypoint(value: str | None) -> str:
    env = {key: item for key, item in os.environ.items() if key != "NETFORGE_DISTRIBUTED_HOST"}
    if value is not None:
        env["NETFORGE_DISTRIBUTED_HOST"] = value
    return subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), "sh", "-c", 'printf %s "$NETFORGE_DISTRIBUTED_HOST"'],
                          env=env, capture_output=True, text=True, timeout=30, check=True).stdout


def test_the_entrypoint_advertises_the_containers_own_address_unless_told():
    """Replicas of a scaled worker service reach each other's distributed ranks at the address each
    advertises: its own non-loopback address when NETFORGE_DISTRIBUTED_HOST is empty or unset (the
    compose file's default), the value when one is set."""
    if shutil.which("hostname") is None:
        pytest.skip("no hostname command here (the images have Debian's and Ubuntu's)")
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=30)
    addresses = found.stdout.split() if found.returncode == 0 else []
    if not addresses:
        pytest.skip("this machine has no non-loopback address (hostname -I lists none)")
    assert advertised_by_entrypoint("") == addresses[0]
    assert advertised_by_entrypoint(None) == addresses[0]
    assert advertised_by_entrypoint("10.1.2.3") == "10.1.2.3"


def test_the_monitoring_profile_scrapes_with_the_metrics_token(compose):
    prometheus = compose["services"]["prometheus"]
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    token_file = config["scrape_configs"][0]["authorization"]["credentials_file"]
    assert {"source": "netforge_metrics_token", "target": token_file} in prometheus["secrets"]
    assert compose["secrets"]["netforge_metrics_token"] == {"environment": "NETFORGE_METRICS_TOKEN"}
