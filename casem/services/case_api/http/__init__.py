"""The HTTP edge of case-api: who is calling, and the unit of work they get."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.auth import AuthenticationFailed, OrgKey, Principal, authenticate_api_key, authenticate_cached
from casem.app.context import AppContext
from casem.domain.identity import hash_key
from casem.services.common.rate_limit import Limiter, RateLimited
from casem.topology.tenants import CASE_MANAGEMENT


@dataclass(frozen=True)
class Caller:
    principal: Principal
    context: AppContext

    @property
    def org_id(self) -> str:
        return self.principal.org_id

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    @property
    def session_key(self) -> str:
        """One session per org user: what they wrote, they read back, whichever request comes next."""
        return f"{self.principal.org_id}/{self.principal.user_id}"

    def uow(self, tenant: str = CASE_MANAGEMENT, *, read_only: bool = False) -> UnitOfWork:
        return self.context.uow(tenant, read_only=read_only, session_key=self.session_key)


def context_of(request: Request) -> AppContext:
    return request.app.state.context


async def caller(request: Request) -> Caller:
    """FastAPI dependency: authenticate DD-API-KEY + DD-APPLICATION-KEY (403 otherwise), then count the
    request against the org's and the application key's rate limits (429 past either)."""
    ctx = context_of(request)
    api_key = request.headers.get("dd-api-key")
    app_key = request.headers.get("dd-application-key")
    principal = await authenticate_cached(lambda: ctx.uow(read_only=True), api_key, app_key, ctx.uow)
    limiter: Limiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and app_key:
        decision = await limiter.check(principal.org_id, hash_key(app_key))
        if decision is not None:
            request.state.rate_limit = decision  # its headers go on the answer, whatever it is
            if not decision.allowed:
                raise RateLimited(decision)
    return Caller(principal=principal, context=ctx)


async def api_key_caller(request: Request) -> OrgKey:
    """FastAPI dependency of the few routes Datadog authenticates with DD-API-KEY alone (the validate
    endpoints): 403 otherwise; counted against the org's and this key's rate limits."""
    ctx = context_of(request)
    api_key = request.headers.get("dd-api-key")
    async with ctx.uow(read_only=True) as uow:
        org_key = await authenticate_api_key(uow, api_key)
    limiter: Limiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None and api_key:
        decision = await limiter.check(org_key.org_id, hash_key(api_key))
        if decision is not None:
            request.state.rate_limit = decision
            if not decision.allowed:
                raise RateLimited(decision)
    return org_key


__all__ = ["AuthenticationFailed", "Caller", "OrgKey", "api_key_caller", "caller", "context_of"]
