"""case-intake remembers the live projects and case types its batches go to for a few seconds: a producer's next
batch into the same project reads nothing, a project deleted is refused once its memory has expired, and what does
not exist is never remembered (it is read, and refused, every time)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.context import AppContext
from casem.app.intake.validation import DataChecks, KnownReferences
from casem.app.projects.service import delete_project
from casem.domain.errors import InvalidInput, NotFound
from tests.intake.stack import Tenant, intake, new_tenant


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountedReads:
    """The read-only units of work the checks open (real ones, counted)."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.opened = 0

    def __call__(self) -> UnitOfWork:
        self.opened += 1
        return self.context.uow(read_only=True)


@pytest.fixture
async def tenant(context: AppContext) -> Tenant:
    return await new_tenant(context)


async def check(reads: Callable[[], UnitOfWork], tenant: Tenant, known: KnownReferences, **fields: object) -> None:
    async with DataChecks(reads, tenant.creds.org_id, known) as checks:
        await checks.check(intake(tenant, **fields))


async def test_the_next_batch_into_a_known_project_reads_nothing(context: AppContext, tenant: Tenant) -> None:
    reads, known = CountedReads(context), KnownReferences()
    await check(reads, tenant, known)
    assert reads.opened == 1
    for _ in range(3):
        await check(reads, tenant, known)
    assert reads.opened == 1


async def test_a_deleted_project_is_refused_once_its_memory_expires(context: AppContext, tenant: Tenant) -> None:
    clock = Clock()
    reads, known = CountedReads(context), KnownReferences(clock)
    await check(reads, tenant, known)
    async with context.uow() as uow:
        await delete_project(uow, tenant.creds.org_id, tenant.creds.user_id, tenant.project_id)
        await uow.commit()

    clock.now += KnownReferences.ttl_s - 0.1
    await check(reads, tenant, known)  # still remembered: case creation is the check that refuses it now
    clock.now += 0.2
    with pytest.raises(NotFound):
        await check(reads, tenant, known)
    assert reads.opened == 2


async def test_what_does_not_exist_is_read_every_time(context: AppContext, tenant: Tenant) -> None:
    reads, known = CountedReads(context), KnownReferences()
    missing = str(uuid.uuid4())
    for attempt in (1, 2):
        with pytest.raises(NotFound):
            await check(reads, tenant, known, project_id=missing)
        with pytest.raises(NotFound):
            await check(reads, tenant, known, type_id=str(uuid.uuid4()))
        assert reads.opened == 2 * attempt


async def test_custom_attribute_values_are_always_checked(context: AppContext, tenant: Tenant) -> None:
    reads, known = CountedReads(context), KnownReferences()
    await check(reads, tenant, known)
    # The standard type has no custom attribute configs: any value is unknown to it.
    with pytest.raises(InvalidInput, match="'region' is not configured for this case type"):
        await check(reads, tenant, known, custom_attributes={"region": "eu"})
    assert reads.opened == 2
