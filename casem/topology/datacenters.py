"""The datacenter catalog: datacenters.yaml beside this module, validated on load.

Each datacenter names its environment, its three Kubernetes clusters, its Kafka producer and
consumer clusters (and broker address where one is known), the Postgres master and replica of
every tenant deployed there, the search cluster of each tenant, its Temporal cluster (address,
namespace, task queue; optional: where the catalog does not know it, it is set at deploy time),
and feature switches.

Tenant names are checked against the tenant registry (casem/topology/tenants.py), so the
catalog cannot invent a tenant. The built-in `local` datacenter (`make up`, embedded backends)
is not in the catalog: casem/topology/config.py resolves it.
"""

from __future__ import annotations

import contextlib
import re
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from casem.topology.tenants import TENANTS_BY_NAME

CATALOG_PATH = Path(__file__).with_name("datacenters.yaml")
LOCAL = "local"

_HOST = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
_HOST_PORT = re.compile(rf"^{_HOST}:\d{{1,5}}$")
_HOST_ONLY = re.compile(rf"^{_HOST}$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _host_port(value: str) -> str:
    if not _HOST_PORT.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"{value!r} is not a host:port endpoint (e.g. db.example.dog:5432)")
    return value


def _hostname(value: str) -> str:
    if not _HOST_ONLY.match(value):
        raise ValueError(f"{value!r} is not a DNS name")
    return value


def _resource_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a lowercase name (letters, digits, dashes)")
    return value


def _known_tenant(value: str) -> str:
    if value not in TENANTS_BY_NAME:
        raise ValueError(f"unknown tenant {value!r}; tenants are: {', '.join(TENANTS_BY_NAME)}")
    return value


Endpoint = Annotated[str, AfterValidator(_host_port)]
Hostname = Annotated[str, AfterValidator(_hostname)]
ResourceName = Annotated[str, AfterValidator(_resource_name)]
TenantName = Annotated[str, AfterValidator(_known_tenant)]


class Environment(StrEnum):
    STAGING = "staging"
    PROD = "prod"
    GOV = "gov"


class Placement(StrEnum):
    """Where a tenant database lives, as the report's deployment notes say it."""

    DEDICATED = "dedicated"
    FABRIC_PROXY = "fabric-proxy"

    @property
    def note(self) -> str:
        return _PLACEMENT_NOTES[self]


_PLACEMENT_NOTES = {
    Placement.DEDICATED: "Dedicated to this datacenter",
    Placement.FABRIC_PROXY: "Fabric proxy shared across clusters",
}


class _Strict(BaseModel):
    # Unknown keys are typos in a hand-edited file: reject them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Kafka(_Strict):
    producer_cluster: ResourceName
    consumer_cluster: ResourceName
    broker_url: Endpoint | None = Field(default=None, description="bootstrap address; only where the report gives one")


class Postgres(_Strict):
    master: Endpoint = Field(description="writes and consistent reads")
    replica: Endpoint = Field(description="reads that tolerate replication lag")
    placement: Placement

    @property
    def note(self) -> str:
        return self.placement.note


_NAMESPACE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def _namespace(value: str) -> str:
    if not _NAMESPACE.match(value) or len(value) > 255:
        raise ValueError(f"{value!r} is not a Temporal namespace or task queue name (letters, digits, . _ -)")
    return value


TemporalName = Annotated[str, AfterValidator(_namespace)]


class Temporal(_Strict):
    """The Temporal cluster the caseworker polls and the services start workflows on."""

    address: Endpoint = Field(description="frontend host:port")
    namespace: TemporalName = "default"
    task_queue: TemporalName = Field(default="caseworker", description="the caseworker's task queue")


class Features(_Strict):
    dynamic_instrumentation: bool = Field(default=False, description="Datadog dynamic instrumentation in the tracer")


class RateLimits(_Strict):
    """Requests the HTTP API takes per period before answering 429 (Datadog's X-RateLimit-* headers).

    Counted for the whole deployment when the API runs on PostgreSQL (every replica counts in one shared window);
    on embedded SQLite, in its single process."""

    period_s: int = Field(default=60, ge=1, le=3600, description="length of a rate-limit window, seconds")
    per_org: int = Field(default=6000, ge=0, description="requests per period of one org, all keys; 0: unlimited")
    per_key: int = Field(default=1200, ge=0, description="requests per period of one application key; 0: unlimited")


class Datacenter(_Strict):
    name: Hostname
    environment: Environment
    kubernetes_clusters: tuple[Hostname, ...] = Field(min_length=1)
    kafka: Kafka
    tenants: tuple[TenantName, ...] = Field(min_length=1, description="tenants deployed here")
    postgres: dict[TenantName, Postgres]
    search: dict[TenantName, ResourceName] = Field(description="search cluster per tenant")
    temporal: Temporal | None = Field(default=None, description="only where known; else set at deploy time")
    features: Features = Features()
    rate_limits: RateLimits = RateLimits()

    @field_validator("kubernetes_clusters", "tenants")
    @classmethod
    def _no_duplicates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"listed twice: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Datacenter:
        if self.name == LOCAL:
            raise ValueError(f"{LOCAL!r} is the built-in development datacenter; pick another name")
        foreign = [c for c in self.kubernetes_clusters if not c.endswith("." + self.name)]
        if foreign:
            raise ValueError(f"Kubernetes clusters outside {self.name}: {', '.join(foreign)}")
        deployed = set(self.tenants)
        for what, mapping in (("postgres", self.postgres), ("search", self.search)):
            if set(mapping) != deployed:
                missing = ", ".join(sorted(deployed - set(mapping))) or "none"
                extra = ", ".join(sorted(set(mapping) - deployed)) or "none"
                raise ValueError(
                    f"{what} must list exactly the deployed tenants {sorted(deployed)}: "
                    f"missing {missing}; not deployed but listed {extra}"
                )
        return self

    def deploys(self, tenant: str) -> bool:
        return tenant in self.tenants


class Catalog(_Strict):
    datacenters: tuple[Datacenter, ...] = Field(min_length=1)

    @field_validator("datacenters")
    @classmethod
    def _unique_names(cls, value: tuple[Datacenter, ...]) -> tuple[Datacenter, ...]:
        names = [dc.name for dc in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"datacenter listed twice: {', '.join(dupes)}")
        return value

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dc.name for dc in self.datacenters)

    def get(self, name: str) -> Datacenter:
        for dc in self.datacenters:
            if dc.name == name:
                return dc
        raise UnknownDatacenterError(name, self.names)


class CatalogError(ValueError):
    """The catalog file is missing, not YAML, or does not match the schema."""


class UnknownDatacenterError(KeyError):
    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown datacenter {self.name!r}; known: {', '.join(self.known)} (and {LOCAL!r})"


def _format_errors(path: Path, raw: dict, err: ValidationError) -> str:
    errors = err.errors()
    # A datacenter that fails also empties the list, and "at least 1 item" would only confuse.
    if len(errors) > 1:
        errors = [e for e in errors if not (e["type"] == "too_short" and e["loc"] == ("datacenters",))]
    lines = [f"{path}: {len(errors)} problem(s) in the datacenter catalog"]
    for e in errors:
        loc = list(e["loc"])
        # Name the datacenter instead of its list index: "us1.prod.dog.kafka" beats "0.kafka".
        if len(loc) >= 2 and loc[0] == "datacenters" and isinstance(loc[1], int):
            with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
                loc[1] = raw["datacenters"][loc[1]].get("name", loc[1])
        where = ".".join(str(p) for p in (loc[1:] if len(loc) > 1 else loc))
        lines.append(f"  - {where}: {e['msg']}")
    return "\n".join(lines)


def load_catalog(path: Path | str = CATALOG_PATH) -> Catalog:
    """Parse and validate a catalog file; CatalogError says what is wrong and where."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the datacenter catalog: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: expected a mapping with a `datacenters` list")
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(_format_errors(path, raw, exc)) from None


@cache
def catalog() -> Catalog:
    """The catalog shipped with casem, loaded once."""
    return load_catalog()


def datacenter(name: str) -> Datacenter:
    return catalog().get(name)
