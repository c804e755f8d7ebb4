"""Tenant registry: the seed's two tenants and which database serves each.

Each tenant has its own database (and its own domain-events topic and search index). The
registry resolves a tenant's master DSN (writes, consistent reads) and an optional replica
DSN (reads that tolerate lag). Resolution order: explicit environment variables, then the
local config file or the current datacenter's catalog entry, then the embedded default (a SQLite
file under the data directory): `casem.topology.config.database_endpoints` does the resolving.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CASE_MANAGEMENT = "case-management"
ON_CALL = "on-call"


@dataclass(frozen=True)
class Tenant:
    name: str
    search_alias: str
    search_cluster: str

    @property
    def env_prefix(self) -> str:
        return "CASEM_TENANT_" + self.name.upper().replace("-", "_")


TENANTS: tuple[Tenant, ...] = (
    Tenant(CASE_MANAGEMENT, search_alias="casem-v8", search_cluster="elasticsearch-casem-v8"),
    Tenant(ON_CALL, search_alias="casem-oncall", search_cluster="elasticsearch-casem-oncall"),
)
TENANTS_BY_NAME: dict[str, Tenant] = {t.name: t for t in TENANTS}


class UnknownTenantError(KeyError):
    pass


def tenant(name: str) -> Tenant:
    try:
        return TENANTS_BY_NAME[name]
    except KeyError:
        raise UnknownTenantError(f"unknown tenant {name!r}; known tenants: {', '.join(TENANTS_BY_NAME)}") from None


@dataclass(frozen=True)
class DatabaseEndpoints:
    master: str
    replica: str | None = None

    @property
    def read_lag_tolerant(self) -> str:
        """DSN for reads that tolerate replication lag: the replica when there is one."""
        return self.replica or self.master


def data_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("CASEM_DATA_DIR", "var")).resolve()


def to_async_dsn(dsn: str) -> str:
    """Accept plain postgresql:// and sqlite:// DSNs and pick casem's async drivers for them."""
    if dsn.startswith("postgresql://") or dsn.startswith("postgres://"):
        return "postgresql+psycopg://" + dsn.split("://", 1)[1]
    if dsn.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + dsn.split(":///", 1)[1]
    return dsn
