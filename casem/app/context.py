"""What every running casem service holds: one database per tenant, the search engine when there is one,
and how cases are found (database or engine), chosen once when the context opens."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from casem.adapters.search import search_from_env
from casem.adapters.search.port import SearchPort
from casem.adapters.secrets import SecretBox, secret_box_from_env
from casem.adapters.storage.database import TenantDatabase, open_tenant_database
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.finder import CaseSearch, DatabaseCaseSearch, EngineCaseSearch
from casem.app.outbound.service import OutboundSettings
from casem.domain.errors import TenantUnavailable
from casem.topology.config import current_datacenter, database_endpoints, tenant_deployed
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints


def case_search_backend(env: Mapping[str, str] | None = None) -> str:
    """Where GET /api/v2/cases, /count and /aggregate look: "engine" (the search index kept by the
    indexer and the search-indexing flavor) or "database". CASEM_CASE_SEARCH decides; by default the
    engine when a real one is configured (CASEM_SEARCH_URL), else the database, which reads its own
    writes at once on a laptop."""
    env = os.environ if env is None else env
    choice = env.get("CASEM_CASE_SEARCH") or ("engine" if env.get("CASEM_SEARCH_URL") else "database")
    if choice not in ("engine", "database"):
        raise ValueError(f"CASEM_CASE_SEARCH must be 'engine' or 'database', not {choice!r}")
    return choice


@dataclass
class AppContext:
    databases: dict[str, TenantDatabase] = field(default_factory=dict)
    # The search engine serving case search, when case_search_backend() is "engine".
    search: SearchPort | None = None
    case_search: CaseSearch = field(default_factory=DatabaseCaseSearch)
    # Where URLs saved by tenants may point (the operator's allow-list, parsed once when the context opens).
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    # Seals the secrets casem stores for tenants (webhook signing secrets); read on first use.
    secrets: SecretBox | None = None

    def secret_box(self) -> SecretBox:
        """The key that seals and opens stored secrets (CASEM_SECRET_KEYS, the secrets dir, or a local key)."""
        if self.secrets is None:
            self.secrets = secret_box_from_env()
        return self.secrets

    def use_search_engine(self, engine: SearchPort | None) -> None:
        """Find cases through `engine` (None: through the database)."""
        self.search = engine
        self.case_search = EngineCaseSearch(engine, CASE_MANAGEMENT) if engine is not None else DatabaseCaseSearch()

    @classmethod
    def open(cls, endpoints: dict[str, DatabaseEndpoints] | None = None, *, migrate: bool = True) -> AppContext:
        ctx = cls(outbound=OutboundSettings.from_env())  # a bad CASEM_OUTBOUND_ALLOW stops the start here
        for t in TENANTS:
            if endpoints is None and not tenant_deployed(t.name):
                continue  # e.g. no on-call tenant in us1.fed.dog: no database, no consumers
            if endpoints is not None and t.name not in endpoints:
                continue
            ep = endpoints[t.name] if endpoints is not None else database_endpoints(t.name)
            if migrate:
                upgrade(ep.master)
            ctx.databases[t.name] = open_tenant_database(t.name, ep)
        if case_search_backend() == "engine":
            ctx.use_search_engine(search_from_env())
        return ctx

    def uow(
        self,
        tenant: str = CASE_MANAGEMENT,
        *,
        read_only: bool = False,
        session_key: str | None = None,
        primary: bool = False,
    ) -> UnitOfWork:
        """Identity and cases live in the case-management tenant; on-call data in its own. `session_key` names
        the caller: its reads after its own writes see them, even with a lagging replica. `primary` (read-only):
        read the master, never a replica, and still take no write lock (see TenantDatabase.primary_reader)."""
        db = self.databases.get(tenant)
        if db is None:
            raise TenantUnavailable(tenant, current_datacenter())
        return UnitOfWork(db, read_only=read_only, session_key=session_key, primary=primary)

    async def close(self) -> None:
        for db in self.databases.values():
            await db.dispose()
        if self.search is not None:
            await self.search.close()
