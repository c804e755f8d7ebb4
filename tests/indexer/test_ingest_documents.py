"""IngestCases hands case-indexer the search document of each case it creates, so the indexer writes it without
reading the case back: that document must be the very one the database gives once the batch is committed (the
one `casem search reindex` and `verify` build), field for field, version and checksum included, on SQLite and
PostgreSQL; and none is given where the case must be read (found by its intake key, or holding a number the
database may give back otherwise)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from casem.adapters.search import document_checksum
from casem.adapters.search.document import content, stamp
from casem.adapters.storage.tables import users
from casem.app.case_types.service import create_case_type
from casem.app.cases import service as cases
from casem.app.cases.batch import BatchItem, create_cases_retrying
from casem.app.context import AppContext
from casem.app.custom_attributes.service import create_config
from casem.app.projects.service import update_project
from casem.app.search.documents import case_documents
from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.services.case_indexer.indexer import _received_document
from tests.intake.stack import Tenant, new_tenant


async def custom_type(context: AppContext, tenant: Tenant) -> str:
    """A custom case type, enabled in the tenant's project, with one attribute of each kind."""
    org, user = tenant.creds.org_id, tenant.creds.user_id
    async with context.uow() as uow:
        case_type = await create_case_type(uow, org, user, name="Incident ✓")
        for key, kind, multi, options in (
            ("team", "TEXT", True, None),
            ("runbook", "URL", False, None),
            ("impact", "NUMBER", False, None),
            ("region", "SELECT", False, ["eu", "us"]),
        ):
            await create_config(
                uow, org, user, case_type.id, key=key, display_name=key, type=kind, is_multi=multi, options=options
            )
        await uow.commit()
    async with context.uow() as uow:
        await update_project(uow, org, user, tenant.project_id, {"enabled_custom_case_types": [case_type.id]})
        await uow.commit()
    return case_type.id


async def test_each_created_case_comes_with_the_document_the_database_gives_back(context: AppContext) -> None:
    tenant = await new_tenant(context)
    org, user = tenant.creds.org_id, tenant.creds.user_id
    type_id = await custom_type(context, tenant)
    project = tenant.project_id
    async with context.uow() as uow:
        known = await cases.create_case(
            uow, org, user, cases.NewCase(project_id=project, title="known", intake_key="known")
        )
        await uow.commit()
    new = [
        cases.NewCase(project_id=project, title="plain", intake_key="plain"),
        cases.NewCase(
            project_id=project,
            title="ünïcode « titre » 🚒",
            description="line one\nline two",
            priority="P1",
            status="CLOSED",
            assignee_id=user,
            attributes={"service": ["web", "db"], "env": ["prod"]},
            intake_key="everything",
        ),
        cases.NewCase(
            project_id=project,
            title="custom",
            type_id=type_id,
            status="IN_PROGRESS",
            custom_attributes={
                "team": ["sre", "dba"],
                "runbook": "https://runbooks.example.com/disk",
                "impact": 2.5,
                "region": {"type": "SELECT", "is_multi": False, "value": "eu"},
            },
            intake_key="custom",
        ),
        cases.NewCase(project_id=project, title="integral", type_id=type_id, custom_attributes={"impact": 3}),
        # Numbers jsonb writes back otherwise: 1e+20 comes back as an integer, -0.0 as 0.
        cases.NewCase(project_id=project, title="huge", type_id=type_id, custom_attributes={"impact": 1e20}),
        cases.NewCase(project_id=project, title="minus zero", type_id=type_id, custom_attributes={"impact": -0.0}),
        cases.NewCase(project_id=project, title="again", intake_key="plain"),  # a repeat within the batch
        cases.NewCase(project_id=project, title="known again", intake_key="known"),
    ]
    items = [BatchItem(org, user, case, None, True) for case in new]
    items.append(BatchItem(org, user, cases.NewCase(project_id=project, title="not the indexer's")))
    outcomes, _ = await create_cases_retrying(context.uow, items)
    assert [o.error for o in outcomes] == [None] * len(items)
    titles = [o.case.title for o in outcomes if o.case is not None]
    documented = {o.case.title for o in outcomes if o.case is not None and o.document is not None}
    # Only the cases this call created for a caller that indexes them, with numbers stored as given.
    assert documented == {"plain", "ünïcode « titre » 🚒", "custom", "integral"}, titles
    assert outcomes[-2].case is not None and outcomes[-2].case.id == known.id

    async with context.uow(read_only=True) as uow:
        stored = await case_documents(uow, [(org, o.case.id) for o in outcomes if o.case is not None])
    for outcome in outcomes:
        if outcome.document is None:
            continue
        assert outcome.case is not None
        read_back = stored[outcome.case.id]
        assert outcome.document == read_back
        assert outcome.document["version"] == read_back["version"] == 1
        assert document_checksum(outcome.document) == document_checksum(read_back)
    # The names the batch supplied from what it had at hand are the ones the database joins.
    async with context.uow(read_only=True) as uow:
        handle = await uow.scalar(sa.select(users.c.handle).where(users.c.id == user))
    everything = stored[outcomes[1].case.id]  # type: ignore[union-attr]
    assert (everything["assignee_handle"], everything["type_name"], everything["closed_at"]) == (
        handle,
        "STANDARD",
        everything["created_at"],
    )
    assert stored[outcomes[2].case.id]["type_name"] == "Incident ✓"  # type: ignore[union-attr]
    assert stored[outcomes[2].case.id]["project_key"] == tenant.project_key  # type: ignore[union-attr]


def test_a_document_that_does_not_check_out_is_read_instead() -> None:
    """case-indexer writes a stamped document as it came, so it checks what it got; one that does not check out
    (not JSON, not stamped, a field missing) is dropped, and the case read, as a found one is."""
    good = stamp(
        {
            "id": "c1",
            "org_id": "o1",
            "key": "P-1",
            "status": "OPEN",
            "priority": "P3",
            "created_at": "2024-01-01T00:00:00Z",
            "version": 1,
        }
    )
    result = pb.IngestResult(case_id="c1", created=True, document=good.text, document_version=1)
    assert _received_document(result) == good
    assert _received_document(pb.IngestResult(case_id="c1", created=False)) is None  # found: none given
    unstamped = json.dumps({k: v for k, v in content(good.fields).items() if k != "checksum"})
    for text in ("{not json", '{"id": "c1"}', unstamped):
        bad = pb.IngestResult(case_id="c1", created=True, document=text, document_version=1)
        assert _received_document(bad) is None
