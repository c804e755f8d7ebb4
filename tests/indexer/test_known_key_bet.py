"""Batch creation's bet that none of a batch's intake keys is known (KnownKeyLookups): after a run of batches that
found none, a batch skips the read of its keys; when one is known after all, the unique constraint refuses the
batch, which runs again with the read, and the outcome is the one the read would have given at once: the known
case found, the others created once, numbers still gap-free. On SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import REGISTRY

from casem.adapters.storage.tables import cases as cases_table
from casem.adapters.storage.tables import projects
from casem.app.cases import service as cases
from casem.app.cases.batch import BatchItem, KnownKeyLookups, create_cases_retrying
from casem.app.context import AppContext
from casem.topology.tenants import CASE_MANAGEMENT
from tests.intake.stack import Tenant, new_tenant


def batch(tenant: Tenant, *keys: str) -> list[BatchItem]:
    org, user = tenant.creds.org_id, tenant.creds.user_id
    return [
        BatchItem(org, user, cases.NewCase(project_id=tenant.project_id, title=f"case {k}", intake_key=k)) for k in keys
    ]


def test_the_bet_is_made_after_a_run_of_batches_without_known_keys_and_called_off_by_one() -> None:
    lookups = KnownKeyLookups(quiet_batches=2)
    assert lookups.look_up()
    lookups.saw(known=False)
    assert lookups.look_up()
    lookups.saw(known=False)
    assert not lookups.look_up()  # two quiet batches: the next ones bet
    lookups.saw(known=True)
    assert lookups.look_up()


async def test_a_lost_bet_gives_what_the_read_would_have(context: AppContext) -> None:
    tenant = await new_tenant(context)
    lookups = KnownKeyLookups(quiet_batches=1)
    first, _ = await create_cases_retrying(context.uow, batch(tenant, "a", "b"), lookups)
    assert [o.created for o in first] == [True, True]
    assert not lookups.look_up()  # betting from now on

    # "b" is known: the bet is lost, the batch runs again with the read (and the metric says so).
    lost_before = _lookups("bet_lost")
    second, _ = await create_cases_retrying(context.uow, batch(tenant, "c", "b", "d", "c"), lookups)
    assert _lookups("bet_lost") == lost_before + 1
    assert [(o.created, o.known) for o in second] == [(True, False), (False, True), (True, False), (False, False)]
    assert second[1].case is not None and first[1].case is not None
    assert second[1].case.id == first[1].case.id
    assert second[3].case is not None and second[0].case is not None and second[3].case.id == second[0].case.id
    assert lookups.look_up()  # called off: the next batches read their keys again

    # The next batch reads its keys (and finds none known); the one after bets: it never reads them.
    writer = context.databases[CASE_MANAGEMENT].writer.sync_engine
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    sa.event.listen(writer, "before_cursor_execute", record)
    try:
        for keys, reads in ((("e",), True), (("f",), False)):
            sent.clear()
            counted_before = _lookups("read" if reads else "skipped")
            outcomes, _ = await create_cases_retrying(context.uow, batch(tenant, *keys), lookups)
            assert [o.created for o in outcomes] == [True]
            assert any(_reads_intake_keys(statement) for statement in sent) is reads, sent
            assert _lookups("read" if reads else "skipped") == counted_before + 1
    finally:
        sa.event.remove(writer, "before_cursor_execute", record)

    async with context.uow(read_only=True) as uow:
        numbers = sorted(
            (
                await uow.execute(sa.select(cases_table.c.number).where(cases_table.c.project_id == tenant.project_id))
            ).scalars()
        )
        counter = await uow.scalar(sa.select(projects.c.case_counter).where(projects.c.id == tenant.project_id))
    # a to f: one case each, numbered without a gap, the lost attempt's numbers given back.
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert counter == 6


def _reads_intake_keys(statement: str) -> bool:
    """A query of cases by intake key (not the insert, which names the column too)."""
    return "intake_key" in statement and "INSERT" not in statement.upper()


def _lookups(outcome: str) -> float:
    return REGISTRY.get_sample_value("casem_batch_intake_key_lookups_total", {"outcome": outcome}) or 0.0
