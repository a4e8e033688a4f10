"""deploy/compose: valid against the compose specification's JSON schema, and consistent.

No Docker engine runs here, so the file is checked offline: the schema that
check-jsonschema vendors from the compose-spec project, then what the schema
cannot see (references between services, the settings the environment names).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from config.settings import Settings
from tests.support.deploy_env import interpolate, settings_field_exists

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/compose/compose.yaml"
SECRETS = {
    "CLICKHOUSE_PASSWORD": "ch-pass-for-tests",
    "AUDITLOG_API__JWT_SECRET": "jwt-secret-for-tests-0123456789abcdef",
    "AUDITLOG_API__CURSOR_SECRET": "cursor-secret-for-tests-0123456789",
}


def _schema_validator() -> jsonschema.protocols.Validator:
    text = (resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text("utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_file_is_valid_against_the_compose_spec_schema(compose: dict[str, Any]):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _schema_validator().iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_misspelt_service_key(compose: dict[str, Any]):
    broken = json.loads(json.dumps(compose))
    broken["services"]["consumer"]["healtcheck"] = broken["services"]["consumer"].pop("healthcheck")
    assert any("healtcheck" in e.message for e in _schema_validator().iter_errors(broken))


def test_every_service_has_a_health_check_or_runs_to_completion(compose: dict[str, Any]):
    for name, service in compose["services"].items():
        one_shot = service.get("restart") == "no"
        assert one_shot or "healthcheck" in service, f"{name} has no health check"
    assert "/readyz" in " ".join(compose["services"]["api"]["healthcheck"]["test"])
    assert "9108/metrics" in " ".join(compose["services"]["consumer"]["healthcheck"]["test"])


def test_dependencies_and_named_volumes_exist(compose: dict[str, Any]):
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            assert source in declared, f"{name} mounts undeclared volume {source}"
    stateful = {"kafka": "/var/lib/kafka/data", "clickhouse": "/var/lib/clickhouse"}
    for name, path in stateful.items():
        assert any(m.endswith(":" + path) for m in services[name]["volumes"]), f"{name} data is not persistent"


def test_consumer_scales_without_port_clashes(compose: dict[str, Any]):
    consumer = compose["services"]["consumer"]
    assert "ports" not in consumer  # `--scale consumer=N` would collide on a published port
    assert "container_name" not in consumer
    assert consumer["deploy"]["replicas"] == "${CONSUMER_REPLICAS:-2}"


def test_environment_names_only_real_settings_and_builds_production_settings(compose: dict[str, Any], monkeypatch):
    env = compose["services"]["api"]["environment"]
    unknown = [k for k in env if not settings_field_exists(k)]
    assert unknown == []
    for key, value in env.items():
        monkeypatch.setenv(key, interpolate(str(value), SECRETS))
    settings = Settings(_env_file=None)
    assert settings.environment == "production"
    assert settings.clickhouse.dsn == "http://auditlog:ch-pass-for-tests@clickhouse:8123"
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.kafka.partitions == 12


def test_compose_refuses_to_start_without_the_secrets(compose: dict[str, Any]):
    env = compose["services"]["consumer"]["environment"]
    with pytest.raises(KeyError, match="AUDITLOG_API__JWT_SECRET"):
        interpolate(env["AUDITLOG_API__JWT_SECRET"], {})
    example = (ROOT / "deploy/compose/.env.example").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE.read_text()))
    assert required <= set(re.findall(r"^([A-Z_]+)=", example, re.M))


def test_image_contains_every_package_the_distribution_ships():
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \./", dockerfile, re.M))
    assert {p.split(".")[0] for p in packages} <= copied
    for source in copied | {"pyproject.toml", "README.md"}:
        assert (ROOT / source).exists(), source
