"""Read-your-writes with a replica: a caller that wrote reads from the master until the replica has replayed
its write (or the window passed); other callers keep reading the replica. On PostgreSQL with a "replica" that
never catches up (a second database that receives nothing), through the HTTP API."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from casem.adapters.storage.database import WriteFences, parse_lsn
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.tables import credentials, orgs, users
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org, create_user, issue_key
from casem.domain.identity import APP_KEY
from casem.services.case_api.http.app import create_app
from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints
from tests.support.databases import create_postgres_database, drop_postgres_database


def test_lsn_positions_compare_as_numbers() -> None:
    assert parse_lsn("0/16B3748") < parse_lsn("1/0") < parse_lsn("16/B374D848")


def test_fences_hold_until_the_replica_replays_the_write_or_the_window_passes() -> None:
    fences = WriteFences(window_s=30)
    assert not fences.needs_master("a", replayed=None)  # never wrote: the replica
    fences.written("a", lsn=1000, now=0.0)
    assert fences.needs_master("a", replayed=999, now=1.0)  # the replica is behind the write
    assert not fences.needs_master("b", replayed=999, now=1.0)  # another session is not held
    assert not fences.needs_master("a", replayed=1000, now=2.0)  # replayed: back to the replica, fence gone
    assert not fences.pending("a")
    fences.written("a", lsn=2000, now=10.0)
    assert fences.needs_master("a", replayed=None, now=39.0)  # the replica cannot tell: the window holds
    assert not fences.needs_master("a", replayed=1500, now=41.0)  # window over: a stuck replica frees the session


@pytest.fixture
async def lagging() -> AsyncIterator[AppContext]:
    """A master and a replica that never replays anything (an empty database of the same schema)."""
    master, replica = create_postgres_database("ryw_master"), create_postgres_database("ryw_replica")
    try:
        upgrade(master)
        upgrade(replica)
        ctx = AppContext.open({CASE_MANAGEMENT: DatabaseEndpoints(master=master, replica=replica)}, migrate=False)
        ctx.databases[CASE_MANAGEMENT].fences.window_s = 2.0
        try:
            yield ctx
        finally:
            await ctx.close()
    finally:
        drop_postgres_database(master)
        drop_postgres_database(replica)


@pytest.mark.postgres
async def test_a_caller_reads_its_own_writes_while_the_replica_lags(lagging: AppContext) -> None:
    ctx = lagging
    db = ctx.databases[CASE_MANAGEMENT]
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, "ryw", "alice@example.com")
        bob = await create_user(uow, creds.org_id, "bob@example.com")
        await uow.session.flush()
        bob_key = issue_key(uow, creds.org_id, APP_KEY, "bob", user_id=bob.id).secret
        await uow.commit()
    # The replica had replicated the org and its keys long ago; it stops there.
    async with db.writer.connect() as source, db.reader.begin() as replica:
        for table in (orgs, users, credentials):
            rows = [dict(r._mapping) for r in await source.execute(sa.select(table))]
            await replica.execute(sa.insert(table), rows)
    app = create_app(ctx)
    alice = {"DD-API-KEY": creds.api_key, "DD-APPLICATION-KEY": creds.app_key}
    as_bob = {"DD-API-KEY": creds.api_key, "DD-APPLICATION-KEY": bob_key}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://casem") as http:
        created = await http.post(
            "/api/v2/cases/projects",
            headers=alice,
            json={"data": {"type": "project", "attributes": {"key": "RYW", "name": "Read your writes"}}},
        )
        assert created.status_code == 201, created.text
        path = f"/api/v2/cases/projects/{created.json()['data']['id']}"
        assert (await http.get(path, headers=alice)).status_code == 200  # her own write: from the master
        assert [p["id"] for p in (await http.get("/api/v2/cases/projects", headers=alice)).json()["data"]] != []
        assert (await http.get(path, headers=as_bob)).status_code == 404  # bob reads the (stale) replica
        time.sleep(2.1)  # past the window: a replica that never catches up gets her reads back
        assert (await http.get(path, headers=alice)).status_code == 404
