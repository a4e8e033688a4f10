"""deploy/k8s: every manifest valid against the Kubernetes schemas, and the pieces fit.

No cluster runs here: kubernetes-validate checks each object against the
OpenAPI-derived JSON schema of the release below (strict: unknown fields fail),
then these tests check what a schema cannot (selectors, probes, scaling bounds,
the settings the ConfigMap and Secret name).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from config.settings import Settings
from tests.support.deploy_env import settings_field_exists

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
KUBERNETES_VERSION = "1.31.0"


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] != "Kustomization":
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


OBJECTS = _objects()


def _containers(kind: str, name: str) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = OBJECTS[(kind, name)]["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize("key", sorted(OBJECTS), ids=lambda k: f"{k[0]}/{k[1]}")
def test_manifest_is_valid_against_the_kubernetes_schema(key):
    kubernetes_validate.validate(OBJECTS[key], KUBERNETES_VERSION, strict=True)


def test_the_schema_check_catches_a_misspelt_field():
    broken = copy.deepcopy(OBJECTS[("Deployment", "auditlog-api")])
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/", "port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_consumer_scales_up_to_the_topic_partition_count_and_no_further():
    partitions = int(OBJECTS[("ConfigMap", "auditlog-config")]["data"]["AUDITLOG_KAFKA__PARTITIONS"])
    hpa = OBJECTS[("HorizontalPodAutoscaler", "auditlog-consumer")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "auditlog-consumer"}
    assert hpa["maxReplicas"] == partitions
    assert 1 <= hpa["minReplicas"] <= OBJECTS[("Deployment", "auditlog-consumer")]["spec"]["replicas"] <= partitions


def test_api_probes_use_readyz_for_readiness_and_healthz_for_liveness():
    (api,) = _containers("Deployment", "auditlog-api")
    ports = {p["name"] for p in api["ports"]}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "http" in ports
    (consumer,) = _containers("Deployment", "auditlog-consumer")
    assert consumer["livenessProbe"]["httpGet"]["path"] == "/metrics"
    named_ports = {p["name"]: p["containerPort"] for p in consumer["ports"]}
    metrics_port = named_ports[consumer["livenessProbe"]["httpGet"]["port"]]
    config = OBJECTS[("ConfigMap", "auditlog-config")]["data"]
    assert metrics_port == int(config["AUDITLOG_CONSUMER__METRICS_PORT"])


def test_service_and_disruption_budgets_select_the_pods_they_mean():
    labels = {
        name: OBJECTS[("Deployment", name)]["spec"]["template"]["metadata"]["labels"]
        for name in ("auditlog-api", "auditlog-consumer")
    }
    service = OBJECTS[("Service", "auditlog-api")]["spec"]
    assert service["selector"].items() <= labels["auditlog-api"].items()
    (api,) = _containers("Deployment", "auditlog-api")
    assert service["ports"][0]["targetPort"] in {p["name"] for p in api["ports"]}
    for name in ("auditlog-api", "auditlog-consumer"):
        pdb = OBJECTS[("PodDisruptionBudget", name)]["spec"]
        assert pdb["selector"]["matchLabels"].items() <= labels[name].items()
        assert OBJECTS[("Deployment", name)]["spec"]["selector"]["matchLabels"].items() <= labels[name].items()


def test_every_container_has_requests_and_limits_and_reads_config_and_secret():
    workloads = [("Deployment", "auditlog-api"), ("Deployment", "auditlog-consumer"),
                 ("Deployment", "auditlog-sequencer"), ("Job", "auditlog-migrate")]
    for kind, name in workloads:
        for container in _containers(kind, name):
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"} == set(resources["limits"]), name
            sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
            assert sources == {"auditlog-config", "auditlog-secrets"}, name


def _environment(secrets: dict[str, str]) -> dict[str, str]:
    env = dict(OBJECTS[("ConfigMap", "auditlog-config")]["data"])
    env.update(OBJECTS[("Secret", "auditlog-secrets")]["stringData"])
    env.update(secrets)
    return env


def test_config_map_and_secret_name_only_real_settings():
    assert [k for k in _environment({}) if not settings_field_exists(k)] == []


def test_shipped_secret_placeholders_are_refused_in_production(monkeypatch):
    for key, value in _environment({}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(_env_file=None)


def test_with_real_secrets_the_cluster_settings_select_the_distributed_table(monkeypatch):
    real = {"AUDITLOG_API__JWT_SECRET": "a" * 40, "AUDITLOG_API__CURSOR_SECRET": "b" * 40,
            "AUDITLOG_CLICKHOUSE__DSN": "https://auditlog:s3cret@ch.example.internal:8443"}
    for key, value in _environment(real).items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.events_table == "audit.events"  # the Distributed table: consumer and API unchanged
    assert settings.clickhouse.cluster == "audit_cluster"
    assert settings.api.host == "0.0.0.0"


def _env_value(container: dict[str, Any], name: str) -> Any:
    return next((e.get("value", e.get("valueFrom")) for e in container.get("env", []) if e["name"] == name), None)


def test_exactly_one_sequencer_replica_never_two_during_a_rollout_and_no_autoscaler():
    sequencers = [key for key, obj in OBJECTS.items() if obj["kind"] in {"Deployment", "StatefulSet"}
                  and any(c.get("args") == ["sequence"] for c in obj["spec"]["template"]["spec"]["containers"])]
    assert sequencers == [("Deployment", "auditlog-sequencer")]
    spec = OBJECTS[("Deployment", "auditlog-sequencer")]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # RollingUpdate would run the old and the new pod at once
    targets = [o["spec"]["scaleTargetRef"]["name"] for (kind, _), o in OBJECTS.items()
               if kind == "HorizontalPodAutoscaler"]
    assert "auditlog-sequencer" not in targets
    (sequencer,) = _containers("Deployment", "auditlog-sequencer")
    assert sequencer["livenessProbe"]["httpGet"]["path"] == "/metrics"
    ports = {p["name"]: p["containerPort"] for p in sequencer["ports"]}
    config = OBJECTS[("ConfigMap", "auditlog-config")]["data"]
    assert ports[sequencer["livenessProbe"]["httpGet"]["port"]] == int(config["AUDITLOG_TRANSPARENCY__METRICS_PORT"])


def test_the_signing_key_comes_from_its_own_secret_and_only_the_sequencer_reads_it():
    (sequencer,) = _containers("Deployment", "auditlog-sequencer")
    ref = _env_value(sequencer, "AUDITLOG_TRANSPARENCY__SIGNING_KEY")
    assert ref == {"secretKeyRef": {"name": "auditlog-sequencer-secrets", "key": "AUDITLOG_TRANSPARENCY__SIGNING_KEY"}}
    assert "AUDITLOG_TRANSPARENCY__SIGNING_KEY" in OBJECTS[("Secret", "auditlog-sequencer-secrets")]["stringData"]
    assert "AUDITLOG_TRANSPARENCY__SIGNING_KEY" not in _environment({})  # not in the shared ConfigMap/Secret
    dsn = _env_value(sequencer, "AUDITLOG_CLICKHOUSE__DSN")  # one server: its round table lives there
    assert dsn == {"secretKeyRef": {"name": "auditlog-sequencer-secrets", "key": "AUDITLOG_CLICKHOUSE__DSN"}}
    readers = []
    for (kind, name), obj in OBJECTS.items():
        if kind not in {"Deployment", "Job", "StatefulSet"}:
            continue
        text = yaml.safe_dump(obj["spec"]["template"])
        if "auditlog-sequencer-secrets" in text or "AUDITLOG_TRANSPARENCY__SIGNING_KEY" in text:
            readers.append(name)
    assert readers == ["auditlog-sequencer"]


def test_consumers_run_with_the_transparency_log_disabled():
    (consumer,) = _containers("Deployment", "auditlog-consumer")
    assert _env_value(consumer, "AUDITLOG_TRANSPARENCY__ENABLED") == "false"
    (sequencer,) = _containers("Deployment", "auditlog-sequencer")
    assert _env_value(sequencer, "AUDITLOG_TRANSPARENCY__ENABLED") in (None, "true")
