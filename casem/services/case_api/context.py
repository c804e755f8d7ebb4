"""What a running case-api holds: one database per tenant, opened once and shared by HTTP and gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field

from casem.adapters.storage.database import TenantDatabase, open_tenant_database
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.errors import TenantUnavailable
from casem.topology.config import current_datacenter, tenant_deployed
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints, database_endpoints


@dataclass
class CaseApiContext:
    databases: dict[str, TenantDatabase] = field(default_factory=dict)

    @classmethod
    def open(cls, endpoints: dict[str, DatabaseEndpoints] | None = None, *, migrate: bool = True) -> CaseApiContext:
        ctx = cls()
        for t in TENANTS:
            if endpoints is None and not tenant_deployed(t.name):
                continue  # e.g. no on-call tenant in us1.fed.dog: no database, no consumers
            if endpoints is not None and t.name not in endpoints:
                continue
            ep = endpoints[t.name] if endpoints is not None else database_endpoints(t.name)
            if migrate:
                upgrade(ep.master)
            ctx.databases[t.name] = open_tenant_database(t.name, ep)
        return ctx

    def uow(self, tenant: str = CASE_MANAGEMENT, *, read_only: bool = False) -> UnitOfWork:
        """Identity and cases live in the case-management tenant; on-call data in its own."""
        db = self.databases.get(tenant)
        if db is None:
            raise TenantUnavailable(tenant, current_datacenter())
        return UnitOfWork(db, read_only=read_only)

    async def close(self) -> None:
        for db in self.databases.values():
            await db.dispose()
