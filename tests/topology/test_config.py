"""Configuration resolution: datacenter, overrides, credentials and undeployed tenants."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from casem.topology import config
from casem.topology import datacenters as catalog_module
from casem.topology.config import ConfigError, TenantNotDeployedError, database_endpoints
from casem.topology.datacenters import UnknownDatacenterError, catalog
from casem.topology.services import EVENT_HANDLER_FLAVORS, SERVICES, THIRD_PARTY_READER_FLAVORS
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL
from casem.topology.topics import DOMAIN_EVENTS, DOMAIN_EVENTS_ONCALL, handler_group, third_party_topic

HANDLER = next(s.name for s in SERVICES if s.flavors == EVENT_HANDLER_FLAVORS)
READER = next(s.name for s in SERVICES if s.flavors == THIRD_PARTY_READER_FLAVORS)


@pytest.fixture(autouse=True)
def _no_stray_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ./casem.local.yaml is read when present: run from an empty directory.
    monkeypatch.chdir(tmp_path)


def env(**values: str) -> dict[str, str]:
    return {"CASEM_SECRETS_DIR": "/nonexistent", **values}


def test_local_is_the_default_with_embedded_backends(tmp_path: Path) -> None:
    cfg = config.resolve(env=env(CASEM_DATA_DIR=str(tmp_path / "var")))
    assert cfg.datacenter == "local"
    assert set(cfg.tenants) == {CASE_MANAGEMENT, ON_CALL} and cfg.not_deployed == []
    db = cfg.tenants[CASE_MANAGEMENT].database
    assert db.master_dsn == f"sqlite:///{tmp_path / 'var' / 'case-management.db'}"
    assert db.replica_dsn == db.master_dsn and db.source == "embedded"
    assert cfg.messaging.backend == "embedded" and cfg.messaging.bootstrap is None
    assert cfg.tenants[ON_CALL].search.url is None and cfg.tenants[ON_CALL].search.index_alias == "casem-oncall"
    assert cfg.features == {"dynamic_instrumentation": False}


def test_ap2_resolves_catalog_endpoints_with_env_credentials() -> None:
    cfg = config.resolve(env=env(CASEM_DATACENTER="ap2.prod.dog", CASEM_PG_USER="casem", CASEM_PG_PASSWORD="p@ss:w/rd"))
    dc = catalog().get("ap2.prod.dog")
    for tenant in (CASE_MANAGEMENT, ON_CALL):
        db = cfg.tenants[tenant].database
        database = tenant.replace("-", "_")
        assert db.master_dsn == f"postgresql://casem:p%40ss%3Aw%2Frd@{dc.postgres[tenant].master}/{database}"
        assert db.replica_dsn == f"postgresql://casem:p%40ss%3Aw%2Frd@{dc.postgres[tenant].replica}/{database}"
        assert db.placement == "Fabric proxy shared across clusters"
        assert cfg.tenants[tenant].search.cluster == dc.search[tenant]
    assert cfg.messaging.bootstrap == "kafka-case-management-ca9c.kafka-case-management.ap2.prod.dog:9092"
    assert cfg.messaging.producer_cluster == cfg.messaging.consumer_cluster == "kafka-case-management-ca9c"
    assert cfg.environment == "prod"


def test_datacenters_without_a_broker_url_leave_bootstrap_to_the_environment() -> None:
    assert config.resolve(env=env(CASEM_DATACENTER="us1.prod.dog")).messaging.bootstrap is None
    cfg = config.resolve(env=env(CASEM_DATACENTER="us1.prod.dog", CASEM_KAFKA_BOOTSTRAP="k1:9092,k2:9092"))
    assert cfg.messaging.bootstrap == "k1:9092,k2:9092"


def test_credentials_precedence_tenant_env_then_shared_env_then_secrets_dir(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "pg-user").write_text("shared-user\n")
    (secrets / "pg-password").write_text("shared-pass\n")
    (secrets / "on-call-pg-user").write_text("oncall-user")
    (secrets / "on-call-pg-password").write_text("oncall-pass")
    base = {"CASEM_DATACENTER": "us1.staging.dog", "CASEM_SECRETS_DIR": str(secrets)}
    cfg = config.resolve(env=base)
    assert "//shared-user:shared-pass@" in cfg.tenants[CASE_MANAGEMENT].database.master_dsn
    assert "//oncall-user:oncall-pass@" in cfg.tenants[ON_CALL].database.master_dsn
    cfg = config.resolve(env={**base, "CASEM_PG_USER": "env-user", "CASEM_PG_PASSWORD": "env-pass"})
    assert "//env-user:env-pass@" in cfg.tenants[ON_CALL].database.master_dsn
    cfg = config.resolve(env={**base, "CASEM_PG_USER": "env-user", "CASEM_TENANT_ON_CALL_PG_USER": "t-user"})
    assert "//t-user@" in cfg.tenants[ON_CALL].database.master_dsn
    assert "//env-user@" in cfg.tenants[CASE_MANAGEMENT].database.master_dsn


def test_missing_credentials_are_reported_not_invented() -> None:
    db = config.resolve(env=env(CASEM_DATACENTER="eu1.prod.dog")).tenants[CASE_MANAGEMENT].database
    assert db.credentials == "missing"
    assert db.master_dsn == "postgresql://case-management-db.postgres.eu1.prod.dog:5432/case_management"


def test_environment_dsns_override_the_catalog() -> None:
    cfg = config.resolve(
        env=env(
            CASEM_DATACENTER="us5.prod.dog",
            CASEM_TENANT_CASE_MANAGEMENT_DSN="postgresql://dev@localhost:5432/casem",
            CASEM_TENANT_ON_CALL_DATABASE="oncall_v2",
        )
    )
    case_db = cfg.tenants[CASE_MANAGEMENT].database
    assert case_db.master_dsn == case_db.replica_dsn == "postgresql://dev@localhost:5432/casem"
    assert case_db.source == "env"
    assert cfg.tenants[ON_CALL].database.master_dsn.endswith(":5432/oncall_v2")


def test_local_file_overrides_catalog_and_env_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "datacenter": "us1.prod.dog",
                "kafka": {"bootstrap": "localhost:9092"},
                "tenants": {CASE_MANAGEMENT: {"master": "localhost:5432", "search_url": "http://localhost:9200"}},
                "features": {"dynamic_instrumentation": True},
            }
        )
    )
    cfg = config.resolve(env=env(CASEM_CONFIG=str(path)))
    assert cfg.datacenter == "us1.prod.dog" and cfg.config_file == str(path)
    assert cfg.messaging.bootstrap == "localhost:9092"
    assert cfg.tenants[CASE_MANAGEMENT].database.master_dsn == "postgresql://localhost:5432/case_management"
    assert cfg.tenants[CASE_MANAGEMENT].database.source == "file"
    assert cfg.tenants[CASE_MANAGEMENT].search.url == "http://localhost:9200"
    assert cfg.features["dynamic_instrumentation"] is True
    cfg = config.resolve(
        env=env(CASEM_CONFIG=str(path), CASEM_DATACENTER="us3.prod.dog", CASEM_FEATURE_DYNAMIC_INSTRUMENTATION="off")
    )
    assert cfg.datacenter == "us3.prod.dog" and cfg.features["dynamic_instrumentation"] is False


def test_local_file_in_the_working_directory_is_picked_up(tmp_path: Path) -> None:
    (tmp_path / "casem.local.yaml").write_text("kafka: {bootstrap: 'localhost:19092'}\n")
    cfg = config.resolve(env=env())
    assert cfg.messaging.backend == "kafka" and cfg.messaging.bootstrap == "localhost:19092"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tenants: {pager: {}}\n", "unknown tenant 'pager'"),
        ("kafka: {brokers: x}\n", "Extra inputs"),
        ("features: {warp_drive: true}\n", "unknown feature"),
        (f"datacenter: us1.fed.dog\ntenants: {{{ON_CALL}: {{dsn: 'postgresql://x/y'}}}}\n", "not deployed"),
    ],
)
def test_invalid_local_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        config.resolve(env=env(CASEM_CONFIG=str(path)))


def test_unknown_datacenter_and_feature_values_fail_clearly() -> None:
    with pytest.raises(UnknownDatacenterError, match="us9.prod.dog"):
        config.resolve(env=env(CASEM_DATACENTER="us9.prod.dog"))
    with pytest.raises(ConfigError, match="expected true or false"):
        config.resolve(env=env(CASEM_FEATURE_DYNAMIC_INSTRUMENTATION="maybe"))
    with pytest.raises(ConfigError, match="no such file"):
        config.resolve(env=env(CASEM_CONFIG="/nonexistent/casem.yaml"))


def test_dynamic_instrumentation_follows_the_catalog() -> None:
    for dc in catalog().datacenters:
        cfg = config.resolve(env=env(CASEM_DATACENTER=dc.name))
        assert cfg.features["dynamic_instrumentation"] is (dc.name == "us1.staging.dog")


def test_tenant_deployed_and_require_tenant() -> None:
    assert config.tenant_deployed(ON_CALL, "us1.staging.dog")
    assert not config.tenant_deployed(ON_CALL, "us1.fed.dog")
    assert config.tenant_deployed(CASE_MANAGEMENT, "us1.fed.dog")
    assert config.tenant_deployed(ON_CALL, "local")
    assert config.tenant_deployed(ON_CALL, env={"CASEM_DATACENTER": "ap1.prod.dog"})
    config.require_tenant(CASE_MANAGEMENT, "us1.fed.dog")
    with pytest.raises(TenantNotDeployedError) as info:
        config.require_tenant(ON_CALL, env={"CASEM_DATACENTER": "us1.fed.dog"})
    err = info.value
    assert (err.tenant, err.datacenter, err.code) == (ON_CALL, "us1.fed.dog", "tenant_not_deployed")
    assert str(err) == "the on-call tenant is not available in datacenter us1.fed.dog: it is not deployed there"
    with pytest.raises(KeyError, match="unknown tenant"):
        config.tenant_deployed("pager", "us1.fed.dog")


def test_undeployed_tenant_has_no_config_and_no_consumers() -> None:
    cfg = config.resolve(env=env(CASEM_DATACENTER="us1.fed.dog"))
    assert list(cfg.tenants) == [CASE_MANAGEMENT] and cfg.not_deployed == [ON_CALL]
    with pytest.raises(TenantNotDeployedError):
        cfg.tenant(ON_CALL)
    topics = {b.topic for s in cfg.services for b in s.topics}
    assert DOMAIN_EVENTS.name in topics and DOMAIN_EVENTS_ONCALL.name not in topics


def test_every_handler_flavor_consumes_each_deployed_tenant_topic_in_its_own_group() -> None:
    cfg = config.resolve(env=env(CASEM_DATACENTER="eu1.prod.dog"), service=HANDLER)
    assert [s.flavor for s in cfg.services] == list(EVENT_HANDLER_FLAVORS)
    for s in cfg.services:
        consumed = {(b.topic, b.group) for b in s.topics if b.role == "consume"}
        group = handler_group(s.flavor)
        assert consumed == {(DOMAIN_EVENTS.name, group), (DOMAIN_EVENTS_ONCALL.name, group)}


def test_third_party_reader_flavors_consume_their_feed() -> None:
    for flavor in THIRD_PARTY_READER_FLAVORS:
        cfg = config.resolve(env=env(CASEM_DATACENTER="us1.fed.dog"), service=READER, flavor=flavor)
        (svc,) = cfg.services
        assert [(b.topic, b.role) for b in svc.topics] == [(third_party_topic(flavor).name, "consume")]


def test_flavor_validation() -> None:
    with pytest.raises(KeyError, match="has no flavors"):
        config.resolve(env=env(), service="case-api", flavor="x")
    with pytest.raises(KeyError, match="runs as one of its flavors"):
        config.resolve(env=env(), service=HANDLER, flavor="nope")


def test_tenants_database_endpoints_follow_the_datacenter() -> None:
    e = env(CASEM_DATACENTER="us1.prod.dog", CASEM_PG_USER="u", CASEM_PG_PASSWORD="p")
    endpoints = database_endpoints(ON_CALL, e)
    assert endpoints.master == ("postgresql+psycopg://u:p@case-management-oncall-db.postgres.us1.prod.dog:5433/on_call")
    assert endpoints.read_lag_tolerant == (
        "postgresql+psycopg://u:p@case-management-oncall-db-replica-general.postgres.us1.prod.dog:5433/on_call"
    )
    # An explicit DSN still wins, and the local datacenter keeps its SQLite default.
    assert database_endpoints(ON_CALL, {**e, "CASEM_TENANT_ON_CALL_DSN": "postgresql://x/y"}).master == (
        "postgresql+psycopg://x/y"
    )
    assert database_endpoints(ON_CALL, {"CASEM_DATA_DIR": "/data"}).master == "sqlite+aiosqlite:////data/on-call.db"
    with pytest.raises(TenantNotDeployedError):
        database_endpoints(ON_CALL, {"CASEM_DATACENTER": "us1.fed.dog"})


def test_redact_dsn_masks_only_the_password() -> None:
    assert config.redact_dsn("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert config.redact_dsn("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db"
    assert config.redact_dsn("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_the_connector_ingress_produces_the_feeds_the_readers_consume() -> None:
    from casem.topology.config import topic_bindings
    from casem.topology.topics import third_party_topic

    bindings = topic_bindings("case-connector-ingress", None, ("case-management", "on-call"))
    assert {(b.topic, b.role) for b in bindings} == {
        (third_party_topic(f).name, "produce") for f in THIRD_PARTY_READER_FLAVORS
    }
    for flavor in THIRD_PARTY_READER_FLAVORS:
        consumed = topic_bindings(READER, flavor, ("case-management",))
        assert [(b.topic, b.role, b.group) for b in consumed] == [
            (third_party_topic(flavor).name, "consume", "case-management")
        ]


def test_temporal_comes_from_env_then_file_then_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = config.resolve(env=env())
    assert (local.temporal.address, local.temporal.source) == (None, "embedded")  # `casem up` starts a dev server
    prod = config.resolve(env=env(CASEM_DATACENTER="us1.prod.dog"))
    assert (prod.temporal.address, prod.temporal.source) == (None, "missing")
    assert (prod.temporal.namespace, prod.temporal.task_queue) == ("default", "caseworker")

    raw = yaml.safe_load(Path(catalog_module.CATALOG_PATH).read_text())
    raw["datacenters"][1]["temporal"] = {"address": "temporal.us1.prod.dog:7233", "namespace": "casem"}
    variant = tmp_path / "catalog.yaml"
    variant.write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(config, "catalog", lambda: catalog_module.load_catalog(variant))
    from_catalog = config.resolve(env=env(CASEM_DATACENTER="us1.prod.dog"))
    assert (from_catalog.temporal.address, from_catalog.temporal.namespace) == ("temporal.us1.prod.dog:7233", "casem")
    assert from_catalog.temporal.source == "catalog"

    file = tmp_path / "casem.yaml"
    file.write_text(yaml.safe_dump({"temporal": {"address": "from-file:7233", "task_queue": "cw-2"}}))
    from_file = config.resolve(env=env(CASEM_DATACENTER="us1.prod.dog", CASEM_CONFIG=str(file)))
    assert (from_file.temporal.address, from_file.temporal.task_queue, from_file.temporal.source) == (
        "from-file:7233",
        "cw-2",
        "file",
    )
    from_env = config.temporal_settings(
        env(CASEM_DATACENTER="us1.prod.dog", CASEM_CONFIG=str(file), CASEM_TEMPORAL_ADDRESS="from-env:7233")
    )
    assert (from_env.address, from_env.task_queue, from_env.source) == ("from-env:7233", "cw-2", "env")


def test_the_workflow_client_reads_the_resolved_temporal(tmp_path: Path) -> None:
    from casem.adapters.workflows.client import task_queue, temporal_address, temporal_namespace

    file = tmp_path / "casem.yaml"
    file.write_text(yaml.safe_dump({"temporal": {"address": "t:7233", "namespace": "ns", "task_queue": "q"}}))
    pod = env(CASEM_CONFIG=str(file))
    assert (temporal_address(pod), temporal_namespace(pod), task_queue(pod)) == ("t:7233", "ns", "q")
