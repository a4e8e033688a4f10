"""deploy/compose: valid against the compose specification's JSON schema, and consistent.

No Docker engine runs here, so the file is checked offline: the schema that
check-jsonschema vendors from the compose-spec project, then what the schema
cannot see (references between services, the settings the environment names).
"""

from __future__ import annotations

import json
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from config.settings import Settings
from tests.support.deploy_env import interpolate, settings_field_exists
from transparency.checkpoint import Signer, public_pem
from transparency.service import current_key_id, load_keyring, load_signer

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy/compose/compose.yaml"
SIGNER = Signer.generate()
SECRETS = {
    "CLICKHOUSE_PASSWORD": "ch-pass-for-tests",
    "AUDITLOG_API__JWT_SECRET": "jwt-secret-for-tests-0123456789abcdef",
    "AUDITLOG_API__CURSOR_SECRET": "cursor-secret-for-tests-0123456789",
    "AUDITLOG_TRANSPARENCY__SIGNING_KEY": SIGNER.private_pem().decode(),
    "AUDITLOG_TRANSPARENCY__PUBLIC_KEY": public_pem(SIGNER.public_key),
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

    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]
    packages = hatch["build"]["targets"]["wheel"]["packages"]
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \./", dockerfile, re.M))
    assert {p.split(".")[0] for p in packages} <= copied
    for source in copied | {"pyproject.toml", "README.md"}:
        assert (ROOT / source).exists(), source


def _service_settings(compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # The container's working directory is empty: a key left under ./var by `make run` here must not count.
    monkeypatch.chdir(tempfile.mkdtemp(prefix="compose-service-"))
    for key, value in compose["services"][name]["environment"].items():
        monkeypatch.setenv(key, interpolate(str(value), SECRETS))
    return Settings(_env_file=None)


def test_exactly_one_service_runs_the_sequencer_and_it_never_scales(compose: dict[str, Any]):
    services = compose["services"]
    sequencers = [name for name, s in services.items() if s.get("command") == ["sequence"]]
    assert sequencers == ["sequence"]
    sequence = services["sequence"]
    assert sequence["deploy"]["replicas"] == 1
    assert "ports" not in sequence
    assert "9109/metrics" in " ".join(sequence["healthcheck"]["test"])
    assert sequence["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_only_the_sequencer_holds_the_signing_key_and_it_comes_from_the_env_file(compose: dict[str, Any]):
    holders = [name for name, s in compose["services"].items()
               if "AUDITLOG_TRANSPARENCY__SIGNING_KEY" in s.get("environment", {})]
    assert holders == ["sequence"]
    value = compose["services"]["sequence"]["environment"]["AUDITLOG_TRANSPARENCY__SIGNING_KEY"]
    assert value.startswith("${AUDITLOG_TRANSPARENCY__SIGNING_KEY:?")  # required: no default key, ever
    with pytest.raises(KeyError, match="AUDITLOG_TRANSPARENCY__SIGNING_KEY"):
        interpolate(value, {})


def test_consumers_do_not_sequence_and_the_sequencer_does(compose: dict[str, Any], monkeypatch):
    consumer = _service_settings(compose, "consumer", monkeypatch)
    assert consumer.transparency.enabled is False
    monkeypatch.delenv("AUDITLOG_TRANSPARENCY__ENABLED")
    sequencer = _service_settings(compose, "sequence", monkeypatch)
    assert sequencer.transparency.enabled is True
    assert load_signer(sequencer, generate=False).key_id == SIGNER.key_id  # production: the secret, not a file


def test_the_api_serves_the_public_key_without_the_private_one(compose: dict[str, Any], monkeypatch):
    api = _service_settings(compose, "api", monkeypatch)
    assert not api.transparency.signing_key.get_secret_value()
    assert current_key_id(api) == SIGNER.key_id
    assert set(load_keyring(api).keys) == {SIGNER.key_id}
