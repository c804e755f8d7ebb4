"""Where the on-call tenant is not deployed, case-api opens no on-call database and says so clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from casem.app.context import AppContext
from casem.domain.errors import TenantUnavailable


async def test_us1_fed_dog_serves_only_the_case_management_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEM_DATACENTER", "us1.fed.dog")
    monkeypatch.setenv("CASEM_TENANT_CASE_MANAGEMENT_DSN", f"sqlite:///{tmp_path / 'cm.db'}")
    ctx = AppContext.open()
    try:
        assert list(ctx.databases) == ["case-management"]
        with pytest.raises(TenantUnavailable, match="on-call tenant is not available in datacenter us1.fed.dog"):
            ctx.uow("on-call")
        async with ctx.uow() as uow:
            assert uow.db.tenant == "case-management"
    finally:
        await ctx.close()


async def test_local_serves_both_tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASEM_DATACENTER", raising=False)
    monkeypatch.setenv("CASEM_DATA_DIR", str(tmp_path))
    ctx = AppContext.open()
    try:
        assert sorted(ctx.databases) == ["case-management", "on-call"]
    finally:
        await ctx.close()
