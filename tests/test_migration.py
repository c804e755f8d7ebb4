"""The live migration, casem → casem (casem is a Datadog-compatible API): two live servers, an org with one of
everything built through the official client plus hundreds of seeded cases with their timelines; the migration
is interrupted, resumed, run again, and a comparison of the two orgs through the API finds them equal.

The 10,000-case run of the same path, with its time, is bench/migration.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from datadog_api_client.v2.model.case_resource_type import CaseResourceType
from datadog_api_client.v2.model.case_update_status import CaseUpdateStatus
from datadog_api_client.v2.model.case_update_status_attributes import CaseUpdateStatusAttributes
from datadog_api_client.v2.model.case_update_status_request import CaseUpdateStatusRequest
from datadog_api_client.v2.model.custom_attribute_type import CustomAttributeType
from datadog_api_client.v2.model.custom_attribute_value import CustomAttributeValue
from datadog_api_client.v2.model.user_create_attributes import UserCreateAttributes
from datadog_api_client.v2.model.user_create_data import UserCreateData
from datadog_api_client.v2.model.user_create_request import UserCreateRequest
from datadog_api_client.v2.model.users_type import UsersType

from casem.adapters.storage.tables import domain_events
from casem.app.context import AppContext
from casem.app.importer.compare import compare_orgs
from casem.app.importer.migration import MigrationState, migrate
from tests.api import test_automation_rules as automation
from tests.api import test_notification_rules as notification_rules
from tests.api.helpers import make_case, make_case_type, make_comment, make_custom_attribute, make_project
from tests.api.test_case_links import link
from tests.api.test_case_views import create_view
from tests.support.api_client import OrgClient, client_for
from tests.support.migration import Side, add_people, seed_cases, two_sides

SEEDED = 180  # with the 2 hand-made ones: 4 pages of 50 cases
PAGE = 50


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sides(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    with two_sides(request.param, tmp_path_factory.mktemp(f"migration-{request.param}")) as pair:
        yield pair


def build_source(org: OrgClient) -> None:
    """One of everything the migration brings over, made through the official client."""
    bob = org.users.create_user(
        body=UserCreateRequest(
            data=UserCreateData(attributes=UserCreateAttributes(email="bob@source.example"), type=UsersType.USERS)
        )
    ).data.id
    incident = make_case_type(org, "Incident")
    make_custom_attribute(org, incident.id, "region", "TEXT")
    project = make_project(org, "SRC", "Source project")
    org.http.patch(
        f"/api/v2/cases/projects/{project.id}",
        json={
            "data": {
                "type": "project",
                "attributes": {"settings": {"notification": {"enabled": True, "destinations": [3]}}},
            }
        },
    ).raise_for_status()
    org.cases.create_project_notification_rule(project_id=project.id, body=notification_rules.create_body())
    org.cases.create_case_automation_rule(
        project_id=project.id, body=automation.create_body(automation.workflow_rule())
    )
    create_view(org, project.id)
    first = make_case(org, project.id, "Login failures", priority="P1")
    region = CustomAttributeValue(type=CustomAttributeType("TEXT"), is_multi=False, value="eu-west-1")
    second = make_case(org, project.id, "Checkout slow", type_id=incident.id, custom_attributes={"region": region})
    comment = make_comment(org, first.id, "looking")
    make_comment(org, first.id, "found it")
    org.http.put(
        f"/api/v2/cases/{first.id}/comment/{comment.id}",
        json={"data": {"type": "case", "attributes": {"comment": "looking (edited)"}}},
    ).raise_for_status()
    org.cases.watch_case(case_id=first.id, user_uuid=bob)
    body = CaseUpdateStatusRequest(
        data=CaseUpdateStatus(attributes=CaseUpdateStatusAttributes(status="IN_PROGRESS"), type=CaseResourceType.CASE)
    )
    org.cases.update_status(case_id=second.id, body=body)
    link(org, first.id, second.id, "BLOCKS")


def outbox_count(side: Side) -> int:
    async def count(ctx: AppContext) -> int:
        async with ctx.uow(read_only=True) as uow:
            return await uow.scalar(sa.select(sa.func.count()).select_from(domain_events))

    return side.run(count)


def run(target: Side, source_api, state: Path, **kwargs):  # type: ignore[no-untyped-def]
    """The migration in its own event loop and context, as `casem import --from-datadog` runs it."""
    return target.run(lambda context: migrate(context, source_api, state, **kwargs))


def test_interrupted_migration_resumes_and_leaves_equal_orgs(sides: tuple[Side, Side], tmp_path: Path) -> None:
    source, target = sides
    org = client_for(source, source.new_org("Source Inc"))  # type: ignore[arg-type]
    build_source(org)
    project_id = org.cases.get_projects().data[0].id

    async def seed(ctx: AppContext) -> None:
        authors = [org.user_id, *await add_people(ctx, org.org_id, 3)]
        await seed_cases(ctx, org.org_id, project_id, count=SEEDED, cells_per_case=5, authors=authors)

    source.run(seed)
    source_api = source.api(org.creds)
    state = tmp_path / "state.json"

    pages_seen: list[int] = []

    def interrupt_after_two_pages(phase: str, done: int, total: int | None) -> None:
        if phase == "cases":
            pages_seen.append(done)
            if len(pages_seen) == 2:
                raise Interrupted

    with pytest.raises(Interrupted):
        run(target, source_api, state, org_name="Migrated Inc", progress=interrupt_after_two_pages, page_size=PAGE)
    saved = MigrationState.load(state)
    assert saved is not None and (saved.configuration_done, saved.case_pages_done, saved.finished) == (True, 2, False)

    resumed = run(target, source_api, state)
    assert resumed.org_id == saved.org_id
    assert resumed.resumed_after_page == 2 and resumed.pages == 2  # pages 3 and 4 only
    assert resumed.requests["cases"] == 2 and resumed.total_cases == SEEDED + 2
    assert "users" not in resumed.requests  # the configuration was not read again
    assert resumed.import_report.conflicts == []

    target_api = target.api(target.keys_for(saved.org_id))
    assert compare_orgs(source_api, target_api) == []
    # The target's history is the source's: the comment edit kept, no creation cell written twice.
    newest = source_api.cases(4, PAGE)[0]  # the hand-made cases are the newest: seeded history is older
    [first] = [c for c in newest if c["attributes"]["title"] == "Login failures"]
    cells = target_api.timeline(first["id"])
    assert [c["attributes"]["type"] for c in cells].count("CASE_CREATED") == 1
    assert any(c["attributes"]["cell_content"].get("message") == "looking (edited)" for c in cells)

    # A second run reads everything again and changes nothing.
    events = outbox_count(target)
    again = run(target, source_api, state)
    counts = again.import_report.counts
    assert again.import_report.created == 0 and again.import_report.replaced == 0
    assert again.import_report.conflicts == []
    assert counts["cases"].unchanged == SEEDED + 2 and counts["timeline"].unchanged == SEEDED * 5 + 6
    assert outbox_count(target) == events
    assert json.loads(state.read_text())["finished"] is True
    source_api.close()
    target_api.close()
