"""The catalog holds every datacenter fact of the seed report, and rejects malformed files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from casem.topology.datacenters import (
    CATALOG_PATH,
    CatalogError,
    Environment,
    UnknownDatacenterError,
    catalog,
    load_catalog,
)
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL, TENANTS_BY_NAME
from tests.topology.seed import SeedDatacenter

# The seed's column labels for each tenant.
PG_LABEL = {"Case": CASE_MANAGEMENT, "On-call": ON_CALL}
SEARCH_LABEL = {"case": CASE_MANAGEMENT, "on-call": ON_CALL}
Mutation = Callable[[list[dict[str, Any]]], object]


def test_catalog_lists_exactly_the_seed_datacenters_in_order(seed_datacenters: dict[str, SeedDatacenter]) -> None:
    assert catalog().names == tuple(seed_datacenters)
    assert len(seed_datacenters) == 8


@pytest.mark.parametrize("name", [dc.name for dc in catalog().datacenters])
def test_datacenter_matches_seed_field_by_field(name: str, seed_datacenters: dict[str, SeedDatacenter]) -> None:
    dc, s = catalog().get(name), seed_datacenters[name]
    # Table and notes agree with each other, and the catalog with both.
    assert dc.environment.value == s.environment == s.notes_environment
    assert list(dc.kubernetes_clusters) == s.clusters == s.notes_clusters
    assert dc.kafka.producer_cluster == s.producer == s.notes_producer
    assert dc.kafka.consumer_cluster == s.consumer
    assert dc.kafka.broker_url == s.broker_url
    for label, tenant in PG_LABEL.items():
        seed_pg, notes_pg = s.postgres[label], s.notes_postgres[label]
        assert seed_pg == notes_pg, f"seed table and notes disagree for {label} in {name}"
        if seed_pg is None:
            assert not dc.deploys(tenant) and tenant not in dc.postgres
            continue
        pg = dc.postgres[tenant]
        assert (pg.master, pg.replica, pg.note) == (seed_pg.master, seed_pg.replica, seed_pg.note)
    for label, tenant in SEARCH_LABEL.items():
        assert dc.search.get(tenant) == s.search[label]
        if s.search[label] is not None:
            # The catalog's cluster is the one the tenant registry expects.
            assert dc.search[tenant] == TENANTS_BY_NAME[tenant].search_cluster
    assert dc.features.dynamic_instrumentation == ("DD dynamic instrumentation enabled" in s.features)


def test_on_call_is_deployed_everywhere_but_the_gov_datacenter() -> None:
    missing = [dc.name for dc in catalog().datacenters if not dc.deploys(ON_CALL)]
    assert missing == ["us1.fed.dog"]
    assert catalog().get("us1.fed.dog").environment is Environment.GOV


def test_only_ap2_has_a_broker_url_and_only_staging_dynamic_instrumentation() -> None:
    assert [dc.name for dc in catalog().datacenters if dc.kafka.broker_url] == ["ap2.prod.dog"]
    assert [dc.name for dc in catalog().datacenters if dc.features.dynamic_instrumentation] == ["us1.staging.dog"]


def test_unknown_datacenter_names_the_known_ones() -> None:
    with pytest.raises(UnknownDatacenterError) as info:
        catalog().get("us9.prod.dog")
    assert "ap2.prod.dog" in str(info.value) and "local" in str(info.value)


def _write_variant(tmp_path: Path, mutate: Mutation) -> Path:
    raw = yaml.safe_load(CATALOG_PATH.read_text())
    mutate(raw["datacenters"])
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda dcs: dcs[1].update(environment="production"), "us1.prod.dog.environment"),
        (lambda dcs: dcs[0]["kafka"].update(broker="x:1"), "us1.staging.dog.kafka.broker"),
        (lambda dcs: dcs[6]["kafka"].update(broker_url="no-port"), "host:port"),
        (lambda dcs: dcs[2]["tenants"].append("pager"), "unknown tenant 'pager'"),
        (
            lambda dcs: dcs[7]["postgres"].update({"on-call": dcs[0]["postgres"]["on-call"]}),
            "not deployed but listed on-call",
        ),
        (lambda dcs: dcs[3]["search"].pop("on-call"), "missing on-call"),
        (lambda dcs: dcs[4]["kubernetes_clusters"].append("x.us1.prod.dog"), "outside eu1.prod.dog"),
        (lambda dcs: dcs[5]["postgres"]["case-management"].update(placement="shared"), "placement"),
        (lambda dcs: dcs.append(dict(dcs[0])), "listed twice: us1.staging.dog"),
        (lambda dcs: dcs[0].update(name="local"), "built-in development datacenter"),
        (lambda dcs: dcs[1].update(temporal={"address": "temporal.us1.prod.dog"}), "us1.prod.dog.temporal.address"),
        (lambda dcs: dcs[1].update(temporal={"address": "t:7233", "namespace": "a b"}), "Temporal namespace"),
        (lambda dcs: dcs[1].update(temporal={"address": "t:7233", "queue": "x"}), "us1.prod.dog.temporal.queue"),
    ],
)
def test_schema_rejects_malformed_catalogs_with_a_clear_message(
    tmp_path: Path, mutate: Mutation, expected: str
) -> None:
    path = _write_variant(tmp_path, mutate)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_unparsable_and_missing_files_are_catalog_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("datacenters: [\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "absent.yaml")


def test_temporal_is_optional_per_datacenter(tmp_path: Path) -> None:
    # The seed names Temporal workers but no Temporal endpoint: no shipped datacenter invents one.
    assert [dc.name for dc in catalog().datacenters if dc.temporal is not None] == []
    path = _write_variant(
        tmp_path, lambda dcs: dcs[1].update(temporal={"address": "temporal-frontend.us1.prod.dog:7233"})
    )
    dc = load_catalog(path).get("us1.prod.dog")
    assert dc.temporal is not None
    assert (dc.temporal.address, dc.temporal.namespace, dc.temporal.task_queue) == (
        "temporal-frontend.us1.prod.dog:7233",
        "default",
        "caseworker",
    )
