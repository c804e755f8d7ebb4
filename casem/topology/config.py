"""Configuration resolution: what each service gets in the datacenter it runs in.

The datacenter is `CASEM_DATACENTER` (or `datacenter:` in the local file), else the built-in
`local` one that `make up` uses: SQLite files under ./var (CASEM_DATA_DIR), the embedded log
instead of Kafka, the embedded search instead of Elasticsearch, every tenant deployed.

Precedence, highest first:

1. environment variables
     CASEM_TENANT_<T>_DSN / CASEM_TENANT_<T>_REPLICA_DSN   full DSNs (T = CASE_MANAGEMENT, ON_CALL)
     CASEM_TENANT_<T>_DATABASE                              database name on the catalog endpoint
     CASEM_TENANT_<T>_SEARCH_URL, CASEM_SEARCH_URL          search endpoint (one tenant / all)
     CASEM_KAFKA_BOOTSTRAP                                  Kafka bootstrap servers
     CASEM_TEMPORAL_ADDRESS / _NAMESPACE / _TASK_QUEUE      the Temporal cluster
     CASEM_FEATURE_<NAME>=true|false                        e.g. CASEM_FEATURE_DYNAMIC_INSTRUMENTATION
     CASEM_RATE_LIMIT_PERIOD_S, _PER_ORG, _PER_KEY          HTTP API rate limits (0 turns one off)
     CASEM_AUTH_CACHE_SECONDS                               how long case-api HTTP remembers a key pair (5; 0: off)
2. the local file: CASEM_CONFIG, else ./casem.local.yaml when it exists (format: `LocalFile`;
   the Helm chart mounts one generated from the catalog)
3. the datacenter catalog (datacenters.yaml)
4. embedded defaults (`local` only)

Credentials never live in the catalog or that file. For a catalog endpoint the Postgres user
and password come from, first found:
     CASEM_TENANT_<T>_PG_USER / CASEM_TENANT_<T>_PG_PASSWORD
     CASEM_PG_USER / CASEM_PG_PASSWORD
     files in CASEM_SECRETS_DIR (default /var/run/secrets/casem, the chart's secret mount):
       <tenant>-pg-user / <tenant>-pg-password, then pg-user / pg-password
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casem.topology import services as service_registry
from casem.topology import topics as topic_registry
from casem.topology.datacenters import (
    LOCAL,
    Datacenter,
    Endpoint,
    Features,
    RateLimits,
    TenantName,
    UnknownDatacenterError,
    catalog,
)
from casem.topology.tenants import TENANTS, DatabaseEndpoints, data_dir, tenant, to_async_dsn

DATACENTER_ENV = "CASEM_DATACENTER"
CONFIG_FILE_ENV = "CASEM_CONFIG"
DEFAULT_CONFIG_FILE = "casem.local.yaml"
SECRETS_DIR_ENV = "CASEM_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/var/run/secrets/casem"
FEATURE_NAMES: tuple[str, ...] = tuple(Features.model_fields)

Env = Mapping[str, str]


class ConfigError(ValueError):
    """The local configuration file or an environment override is invalid."""


class TenantNotDeployedError(LookupError):
    """A call for a tenant that this datacenter does not run (e.g. on-call in us1.fed.dog).

    The API layer maps it to an HTTP error; `code` is a stable machine-readable reason.
    """

    code = "tenant_not_deployed"

    def __init__(self, tenant_name: str, datacenter_name: str) -> None:
        self.tenant = tenant_name
        self.datacenter = datacenter_name
        super().__init__(
            f"the {tenant_name} tenant is not available in datacenter {datacenter_name}: it is not deployed there"
        )

    def __str__(self) -> str:
        return str(self.args[0])


# --- the local file -------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalTenant(_Strict):
    dsn: str | None = Field(default=None, description="full master DSN (wins over master)")
    replica_dsn: str | None = None
    master: Endpoint | None = Field(default=None, description="host:port; credentials from env")
    replica: Endpoint | None = None
    database: str | None = None
    search_url: str | None = None


class LocalKafka(_Strict):
    bootstrap: str | None = None


class LocalRateLimits(_Strict):
    period_s: int | None = Field(default=None, ge=1, le=3600)
    per_org: int | None = Field(default=None, ge=0)
    per_key: int | None = Field(default=None, ge=0)


class LocalTemporal(_Strict):
    address: str | None = Field(default=None, description="host:port of the Temporal frontend")
    namespace: str | None = None
    task_queue: str | None = None


class LocalFile(_Strict):
    """Development and deployment overrides; every key optional."""

    datacenter: str | None = None
    kafka: LocalKafka = LocalKafka()
    temporal: LocalTemporal = LocalTemporal()
    tenants: dict[TenantName, LocalTenant] = {}
    features: dict[str, bool] = {}
    rate_limits: LocalRateLimits = LocalRateLimits()


def _env(env: Env | None) -> Env:
    return os.environ if env is None else env


def config_file_path(env: Env | None = None) -> Path | None:
    env = _env(env)
    explicit = env.get(CONFIG_FILE_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_FILE_ENV}={explicit}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_local_file(env: Env | None = None) -> tuple[LocalFile, Path | None]:
    path = config_file_path(env)
    if path is None:
        return LocalFile(), None
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        local = LocalFile.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid casem configuration file:\n{exc}") from None
    unknown = sorted(set(local.features) - set(FEATURE_NAMES))
    if unknown:
        raise ConfigError(f"{path}: unknown feature(s) {unknown}; known: {list(FEATURE_NAMES)}")
    return local, path


# --- which datacenter, which tenants --------------------------------------------------------


def current_datacenter(env: Env | None = None) -> str:
    """CASEM_DATACENTER, else the local file's `datacenter:`, else `local`; checked against the catalog."""
    env = _env(env)
    name = env.get(DATACENTER_ENV) or load_local_file(env)[0].datacenter or LOCAL
    if name != LOCAL:
        catalog().get(name)  # raises UnknownDatacenterError naming the known ones
    return name


def _catalog_entry(datacenter: str | None, env: Env | None) -> Datacenter | None:
    name = current_datacenter(env) if datacenter is None else datacenter
    return None if name == LOCAL else catalog().get(name)


def deployed_tenants(datacenter: str | None = None, env: Env | None = None) -> tuple[str, ...]:
    dc = _catalog_entry(datacenter, env)
    return tuple(t.name for t in TENANTS) if dc is None else dc.tenants


def tenant_deployed(tenant_name: str, datacenter: str | None = None, env: Env | None = None) -> bool:
    """Whether the tenant runs in the datacenter (default: the current one)."""
    tenant(tenant_name)  # an unknown tenant is a programming error, not "not deployed"
    return tenant_name in deployed_tenants(datacenter, env)


def require_tenant(tenant_name: str, datacenter: str | None = None, env: Env | None = None) -> None:
    """Raise TenantNotDeployedError when the tenant does not run in the datacenter."""
    if not tenant_deployed(tenant_name, datacenter, env):
        name = current_datacenter(env) if datacenter is None else datacenter
        raise TenantNotDeployedError(tenant_name, name)


# --- effective configuration -----------------------------------------------------------------

Source = Literal["env", "file", "catalog", "embedded"]


class DatabaseConfig(BaseModel):
    master_dsn: str = Field(description="writes and consistent reads")
    replica_dsn: str = Field(description="reads that tolerate lag (the master when no replica)")
    placement: str | None = Field(default=None, description="the catalog's note on this database")
    source: Source
    credentials: str = Field(description="where the user and password come from")


class SearchConfig(BaseModel):
    cluster: str | None = Field(description="catalog search cluster; None on the embedded search")
    index_alias: str
    url: str | None = Field(description="None: embedded search (local) or resolve the cluster by name")


class TenantConfig(BaseModel):
    name: str
    database: DatabaseConfig
    search: SearchConfig
    domain_events_topic: str


class MessagingConfig(BaseModel):
    backend: Literal["embedded", "kafka"]
    producer_cluster: str | None = None
    consumer_cluster: str | None = None
    bootstrap: str | None = Field(default=None, description="None on Kafka: not in the catalog")


DEFAULT_TEMPORAL_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "caseworker"  # casem.adapters.workflows.contracts.TASK_QUEUE


class TemporalConfig(BaseModel):
    address: str | None = Field(description="None: not configured (`casem up` starts a dev server)")
    namespace: str
    task_queue: str
    source: Source | Literal["missing"] = Field(description="where the address comes from")


class TopicBinding(BaseModel):
    topic: str
    role: Literal["produce", "consume"]
    group: str | None = None
    tenant: str | None = None


class ServiceConfig(BaseModel):
    service: str
    flavor: str | None
    topics: list[TopicBinding]


class EffectiveConfig(BaseModel):
    datacenter: str
    environment: str
    config_file: str | None
    tenants: dict[str, TenantConfig]
    not_deployed: list[str] = Field(description="tenants that do not run in this datacenter")
    messaging: MessagingConfig
    temporal: TemporalConfig
    features: dict[str, bool]
    rate_limits: RateLimits
    services: list[ServiceConfig]

    def tenant(self, name: str) -> TenantConfig:
        if name not in self.tenants:
            tenant(name)
            raise TenantNotDeployedError(name, self.datacenter)
        return self.tenants[name]


def _tenant_env_prefix(name: str) -> str:
    return tenant(name).env_prefix


def default_database_name(name: str) -> str:
    # The report names no database; the tenant name in Postgres' identifier style is the default.
    return name.replace("-", "_")


def _read_secret(directory: Path, filename: str) -> str | None:
    path = directory / filename
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def pg_credentials(name: str, env: Env | None = None) -> tuple[str | None, str | None, str]:
    """(user, password, where from) for a tenant's catalog database."""
    env = _env(env)
    prefix = _tenant_env_prefix(name)
    user, password = env.get(f"{prefix}_PG_USER"), env.get(f"{prefix}_PG_PASSWORD")
    if user:
        return user, password, f"env {prefix}_PG_USER"
    if env.get("CASEM_PG_USER"):
        return env["CASEM_PG_USER"], env.get("CASEM_PG_PASSWORD"), "env CASEM_PG_USER"
    directory = Path(env.get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR))
    for stem in (f"{name}-pg", "pg"):
        user = _read_secret(directory, f"{stem}-user")
        if user:
            return user, _read_secret(directory, f"{stem}-password"), f"secrets {directory / stem}-user"
    return None, None, "missing"


def postgres_dsn(endpoint: str, database: str, user: str | None, password: str | None) -> str:
    auth = ""
    if user:
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "") + "@"
    return f"postgresql://{auth}{endpoint}/{quote(database, safe='')}"


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced, for printing."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    auth, _, tail = rest.rpartition("@")
    if ":" in auth:
        auth = auth.split(":", 1)[0] + ":***"
    return f"{scheme}://{auth}@{tail}"


def _database(name: str, dc: Datacenter | None, local: LocalFile, env: Env) -> DatabaseConfig:
    prefix = _tenant_env_prefix(name)
    file_t = local.tenants.get(name, LocalTenant())
    env_master, env_replica = env.get(f"{prefix}_DSN"), env.get(f"{prefix}_REPLICA_DSN")
    database = env.get(f"{prefix}_DATABASE") or file_t.database or default_database_name(name)
    placement = dc.postgres[name].note if dc is not None else None
    user, password, cred_source = pg_credentials(name, env)

    # Master: a full DSN (env, then file) wins; else an endpoint (file, then catalog) + credentials.
    source: Source
    if env_master:
        master, source, cred_source = env_master, "env", "in the DSN"
    elif file_t.dsn:
        master, source, cred_source = file_t.dsn, "file", "in the DSN"
    elif file_t.master or dc is not None:
        endpoint = file_t.master or dc.postgres[name].master  # type: ignore[union-attr]
        master, source = postgres_dsn(endpoint, database, user, password), "file" if file_t.master else "catalog"
    else:
        master, source = f"sqlite:///{data_dir(env) / f'{name}.db'}", "embedded"
        cred_source = "none needed"

    replica_endpoint = file_t.replica or (dc.postgres[name].replica if dc is not None else None)
    if env_replica:
        replica = env_replica
    elif file_t.replica_dsn:
        replica = file_t.replica_dsn
    elif replica_endpoint and source in ("catalog", "file") and not file_t.dsn:
        replica = postgres_dsn(replica_endpoint, database, user, password)
    else:
        replica = master  # no replica: lag-tolerant reads go to the master
    return DatabaseConfig(
        master_dsn=master, replica_dsn=replica, placement=placement, source=source, credentials=cred_source
    )


def _search(name: str, dc: Datacenter | None, local: LocalFile, env: Env) -> SearchConfig:
    t = tenant(name)
    url = (
        env.get(f"{t.env_prefix}_SEARCH_URL")
        or env.get("CASEM_SEARCH_URL")
        or local.tenants.get(name, LocalTenant()).search_url
    )
    return SearchConfig(cluster=dc.search[name] if dc is not None else None, index_alias=t.search_alias, url=url)


def _truthy(value: str, var: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{var}={value!r}: expected true or false")


def _features(dc: Datacenter | None, local: LocalFile, env: Env) -> dict[str, bool]:
    features = (dc.features if dc is not None else Features()).model_dump()
    features.update(local.features)
    for name in FEATURE_NAMES:
        var = f"CASEM_FEATURE_{name.upper()}"
        if var in env:
            features[name] = _truthy(env[var], var)
    return features


RATE_LIMIT_ENV = {
    "period_s": "CASEM_RATE_LIMIT_PERIOD_S",
    "per_org": "CASEM_RATE_LIMIT_PER_ORG",
    "per_key": "CASEM_RATE_LIMIT_PER_KEY",
}


def _rate_limits(dc: Datacenter | None, local: LocalFile, env: Env) -> RateLimits:
    values = (dc.rate_limits if dc is not None else RateLimits()).model_dump()
    values.update(local.rate_limits.model_dump(exclude_none=True))
    for name, var in RATE_LIMIT_ENV.items():
        if env.get(var, "").strip():
            try:
                values[name] = int(env[var])
            except ValueError:
                raise ConfigError(f"{var}={env[var]!r}: expected a whole number") from None
    try:
        return RateLimits.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"invalid rate limits {values}: {exc.errors()[0]['msg']}") from None


def rate_limits(datacenter: str | None = None, env: Env | None = None) -> RateLimits:
    """The HTTP API's rate limits in a datacenter (default: the current one): environment, then the local
    file's `rate_limits:`, then the catalog, then the defaults."""
    env = _env(env)
    local, _ = load_local_file(env)
    name = datacenter or env.get(DATACENTER_ENV) or local.datacenter or LOCAL
    return _rate_limits(None if name == LOCAL else catalog().get(name), local, env)


def _temporal(dc: Datacenter | None, local: LocalFile, env: Env) -> TemporalConfig:
    """CASEM_TEMPORAL_ADDRESS / _NAMESPACE / _TASK_QUEUE, then the local file, then the catalog."""
    catalog_t = dc.temporal if dc is not None else None
    source: Source | Literal["missing"]
    if env.get("CASEM_TEMPORAL_ADDRESS"):
        address, source = env["CASEM_TEMPORAL_ADDRESS"], "env"
    elif local.temporal.address:
        address, source = local.temporal.address, "file"
    elif catalog_t is not None:
        address, source = catalog_t.address, "catalog"
    else:
        address, source = None, "embedded" if dc is None else "missing"
    namespace = (
        env.get("CASEM_TEMPORAL_NAMESPACE")
        or local.temporal.namespace
        or (catalog_t.namespace if catalog_t else DEFAULT_TEMPORAL_NAMESPACE)
    )
    queue = (
        env.get("CASEM_TEMPORAL_TASK_QUEUE")
        or local.temporal.task_queue
        or (catalog_t.task_queue if catalog_t else DEFAULT_TASK_QUEUE)
    )
    return TemporalConfig(address=address, namespace=namespace, task_queue=queue, source=source)


def temporal_settings(env: Env | None = None) -> TemporalConfig:
    """Where the current datacenter's Temporal is (what the caseworker and the workflow starters use)."""
    env = _env(env)
    local, _ = load_local_file(env)
    return _temporal(_catalog_entry(None, env), local, env)


def _is_event_handler(svc: service_registry.Service) -> bool:
    return svc.flavors == service_registry.EVENT_HANDLER_FLAVORS


def topic_bindings(service_name: str, flavor: str | None, deployed: tuple[str, ...]) -> list[TopicBinding]:
    """The topics a service (flavor) produces to and consumes from, skipping undeployed tenants."""
    svc = service_registry.service(service_name)
    if svc.flavors and flavor not in svc.flavors:
        raise KeyError(f"{service_name} runs as one of its flavors: {', '.join(svc.flavors)}")
    if not svc.flavors and flavor is not None:
        raise KeyError(f"{service_name} has no flavors")
    bindings: list[TopicBinding] = []
    for topic in topic_registry.TOPICS:
        if topic.tenant is not None and topic.tenant not in deployed:
            continue  # no consumer (or producer) for a tenant this datacenter does not run
        if svc.name in topic.producers or svc.name in topic.added_producers:
            bindings.append(TopicBinding(topic=topic.name, role="produce", tenant=topic.tenant))
        for consumer in topic.consumers:
            if consumer.service == svc.name and consumer.flavor in (None, flavor):
                bindings.append(
                    TopicBinding(topic=topic.name, role="consume", group=consumer.group, tenant=topic.tenant)
                )
        if topic.consumed_by_all_handler_flavors and _is_event_handler(svc) and flavor is not None:
            group = topic_registry.handler_group(flavor)
            bindings.append(TopicBinding(topic=topic.name, role="consume", group=group, tenant=topic.tenant))
    return bindings


def workloads(*, built_only: bool = False) -> list[tuple[str, str | None]]:
    """(service, flavor) of every workload: one per flavorless service, one per flavor (with `built_only`,
    only those this build runs: see service_registry.NOT_BUILT_YET)."""
    every = [(svc.name, flavor) for svc in service_registry.SERVICES for flavor in (svc.flavors or (None,))]
    return [w for w in every if service_registry.built(*w)] if built_only else every


def resolve(
    datacenter: str | None = None,
    env: Env | None = None,
    service: str | None = None,
    flavor: str | None = None,
) -> EffectiveConfig:
    """The effective configuration in a datacenter (default: the current one).

    With `service`, `services` holds that service (one entry per flavor unless `flavor` picks
    one); without, every workload.
    """
    env = _env(env)
    local, path = load_local_file(env)
    name = datacenter or env.get(DATACENTER_ENV) or local.datacenter or LOCAL
    dc = None if name == LOCAL else catalog().get(name)
    deployed = tuple(t.name for t in TENANTS) if dc is None else dc.tenants
    stray = sorted(set(local.tenants) - set(deployed))
    if stray:
        raise ConfigError(f"{path}: configures tenant(s) {stray}, not deployed in datacenter {name}")

    tenants = {
        t: TenantConfig(
            name=t,
            database=_database(t, dc, local, env),
            search=_search(t, dc, local, env),
            domain_events_topic=topic_registry.domain_events_topic(t).name,
        )
        for t in deployed
    }
    bootstrap = env.get("CASEM_KAFKA_BOOTSTRAP") or local.kafka.bootstrap
    if dc is None:
        messaging = MessagingConfig(backend="kafka" if bootstrap else "embedded", bootstrap=bootstrap)
    else:
        messaging = MessagingConfig(
            backend="kafka",
            producer_cluster=dc.kafka.producer_cluster,
            consumer_cluster=dc.kafka.consumer_cluster,
            bootstrap=bootstrap or dc.kafka.broker_url,
        )

    if service is not None:
        svc = service_registry.service(service)
        chosen = [(svc.name, flavor)] if flavor or not svc.flavors else [(svc.name, f) for f in svc.flavors]
    else:
        chosen = workloads()
    return EffectiveConfig(
        datacenter=name,
        environment=dc.environment.value if dc is not None else "development",
        config_file=str(path) if path else None,
        tenants=tenants,
        not_deployed=[t.name for t in TENANTS if t.name not in deployed],
        messaging=messaging,
        temporal=_temporal(dc, local, env),
        features=_features(dc, local, env),
        rate_limits=_rate_limits(dc, local, env),
        services=[ServiceConfig(service=s, flavor=f, topics=topic_bindings(s, f, deployed)) for s, f in chosen],
    )


def resolved_dsns(name: str, env: Env | None = None) -> tuple[str, str] | None:
    """(master, replica) DSNs from the local file or the current datacenter's catalog entry.

    None when neither says anything (then database_endpoints below uses its embedded
    default). Raises TenantNotDeployedError for a tenant the datacenter does not run.
    """
    env = _env(env)
    local, _ = load_local_file(env)
    dc = _catalog_entry(None, env)
    if dc is not None and not dc.deploys(name):
        raise TenantNotDeployedError(name, dc.name)
    file_t = local.tenants.get(name)
    if dc is None and (file_t is None or not (file_t.dsn or file_t.master)):
        return None
    db = _database(name, dc, local, env)
    return db.master_dsn, db.replica_dsn


__all__ = [
    "ConfigError",
    "EffectiveConfig",
    "TenantNotDeployedError",
    "UnknownDatacenterError",
    "current_datacenter",
    "deployed_tenants",
    "require_tenant",
    "resolve",
    "resolved_dsns",
    "temporal_settings",
    "tenant_deployed",
    "topic_bindings",
    "workloads",
]


def database_endpoints(name: str, env: dict[str, str] | None = None) -> DatabaseEndpoints:
    env = os.environ if env is None else env
    t = tenant(name)
    master = env.get(f"{t.env_prefix}_DSN")
    replica = env.get(f"{t.env_prefix}_REPLICA_DSN")
    if not master:
        # Then the local config file or the datacenter catalog (CASEM_DATACENTER).
        resolved = resolved_dsns(name, env)
        if resolved is not None:
            master, replica = resolved[0], replica or resolved[1]
    if not master:
        path = data_dir(env) / f"{t.name}.db"
        master = f"sqlite+aiosqlite:///{path}"
    return DatabaseEndpoints(master=to_async_dsn(master), replica=to_async_dsn(replica) if replica else None)
