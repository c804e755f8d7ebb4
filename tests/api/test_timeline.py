"""Comments and timelines through the official client: comment_case, update_case_comment, delete_case_comment,
list_case_timeline (paging, sort order, change cells, authors)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from datadog_api_client.exceptions import ApiException, ForbiddenException, NotFoundException

from casem.app.cases.service import get_case
from casem.domain.cases import Case
from tests.api.helpers import (
    add_user,
    as_user,
    comment_request,
    make_case,
    make_comment,
    make_project,
    outbox,
    update_comment_request,
)
from tests.support.api_client import OrgClient


def change_case(org: OrgClient, case_id: str, *changes: Callable[[Case, str], object]) -> None:
    """Case changes straight through the domain and the unit of work, as every case-update endpoint makes them."""

    async def _run() -> None:
        async with org.server.context.uow() as uow:
            case = await get_case(uow, org.org_id, case_id)
            for change in changes:
                change(case, org.user_id)
            await uow.commit()

    org.server.call(_run())


def timeline(org: OrgClient, case_id: str, **params) -> list:
    return org.cases.list_case_timeline(case_id=case_id, **params).data


def test_comment_returns_its_timeline_cell_with_the_author(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    response = org.cases.comment_case(case_id=case.id, body=comment_request("Hello World !"))
    assert len(response.data) == 1
    cell = response.data[0]
    assert str(cell.type) == "timeline_cell"
    assert str(cell.attributes.type) == "COMMENT"
    assert cell.attributes.cell_content.message == "Hello World !"
    assert cell.attributes.created_at is not None
    author = cell.attributes.author
    assert str(author.type) == "USER"
    assert (author.content.id, author.content.handle, author.content.email, author.content.name) == (
        org.user_id,
        "admin@example.com",
        "admin@example.com",
        "Admin",
    )
    listed = [c for c in timeline(org, case.id) if str(c.attributes.type) == "COMMENT"]
    assert [c.id for c in listed] == [cell.id]


def test_comment_by_case_key(org: OrgClient) -> None:
    case = make_case(org, make_project(org, "KEYC").id)
    cell = make_comment(org, "KEYC-1", "by key")
    assert [c.id for c in timeline(org, case.id) if c.id == cell.id] == [cell.id]


def test_edit_then_delete_a_comment(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    cell = make_comment(org, case.id, "first draft")

    assert org.cases.update_case_comment(case_id=case.id, cell_id=cell.id, body=update_comment_request("v2")) is None
    raw = org.http.put(
        f"/api/v2/cases/{case.id}/comment/{cell.id}",
        json={"data": {"type": "case", "attributes": {"comment": "v2"}}},
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["data"][0]["attributes"]["cell_content"] == {"message": "v2"}
    edited = next(c for c in timeline(org, case.id) if c.id == cell.id)
    assert edited.attributes.cell_content.message == "v2"
    assert edited.attributes.modified_at >= edited.attributes.created_at
    assert "deleted_at" not in edited.attributes

    response = org.http.delete(f"/api/v2/cases/{case.id}/comment/{cell.id}")
    assert response.status_code == 204, response.text
    assert response.content == b""
    # A deleted comment stays as a tombstone: deleted_at set, message withheld.
    tomb = next(c for c in timeline(org, case.id) if c.id == cell.id)
    assert tomb.attributes.deleted_at is not None
    assert "message" not in tomb.attributes.cell_content

    with pytest.raises(NotFoundException):
        org.cases.update_case_comment(case_id=case.id, cell_id=cell.id, body=update_comment_request("again"))
    with pytest.raises(NotFoundException):
        org.cases.delete_case_comment(case_id=case.id, cell_id=cell.id)


def test_only_the_author_may_edit_or_delete(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    cell = make_comment(org, case.id, "mine")
    colleague = as_user(org, add_user(org, "colleague@example.com", name="Colleague"))
    before = len(outbox(org))
    try:
        # A colleague sees the comment, so a 403 that says why; another org would get a 404.
        with pytest.raises(ForbiddenException) as err:
            colleague.cases.update_case_comment(case_id=case.id, cell_id=cell.id, body=update_comment_request("x"))
        assert "only the author" in str(err.value.body)
        with pytest.raises(ForbiddenException):
            colleague.cases.delete_case_comment(case_id=case.id, cell_id=cell.id)
        # The colleague's own comment is theirs to edit, and is authored by them.
        theirs = make_comment(colleague, case.id, "theirs")
        assert theirs.attributes.author.content.name == "Colleague"
        colleague.cases.update_case_comment(case_id=case.id, cell_id=theirs.id, body=update_comment_request("ok"))
    finally:
        colleague.api_client.close()
        colleague.http.close()
    cells = {c.id: c for c in timeline(org, case.id)}
    assert cells[cell.id].attributes.cell_content.message == "mine"
    assert "modified_at" not in cells[cell.id].attributes
    assert [e["type"] for e in outbox(org)[before:]] == [
        "com.casem.case.comment_added.v1",
        "com.casem.case.comment_updated.v1",
    ]


def test_unknown_cells_and_cases_are_404_and_bad_ids_400(org: OrgClient) -> None:
    project = make_project(org)
    case, other = make_case(org, project.id), make_case(org, project.id, "other")
    cell = make_comment(org, case.id)
    created_cell = next(c for c in timeline(org, case.id) if str(c.attributes.type) == "CASE_CREATED")
    missing = "23fca2aa-4967-4936-bdd7-9157d9e456d7"

    with pytest.raises(NotFoundException):
        org.cases.comment_case(case_id="67d80aa3-36ff-44b9-a694-c501a7591737", body=comment_request("Hello world !"))
    with pytest.raises(NotFoundException):
        org.cases.delete_case_comment(case_id=case.id, cell_id=missing)
    # A comment is addressed through its own case only.
    with pytest.raises(NotFoundException):
        org.cases.update_case_comment(case_id=other.id, cell_id=cell.id, body=update_comment_request("x"))
    # Change cells are not comments: they cannot be edited or deleted.
    with pytest.raises(NotFoundException):
        org.cases.delete_case_comment(case_id=case.id, cell_id=created_cell.id)
    with pytest.raises(NotFoundException):
        org.cases.list_case_timeline(case_id=missing)
    with pytest.raises(ApiException) as err:
        org.cases.delete_case_comment(case_id=case.id, cell_id="not-an-uuid")
    assert err.value.status == 400
    assert "cell_id" in str(err.value.body)
    with pytest.raises(ApiException) as err:
        org.cases.comment_case(case_id=case.id, body=comment_request(""))
    assert err.value.status == 400


def test_timeline_holds_comments_and_change_cells_and_the_client_reads_them(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    make_comment(org, case.id, "triage")
    change_case(org, case.id, lambda c, who: c.transition("IN_PROGRESS", who))
    change_case(org, case.id, lambda c, who: c.prioritize("P1", who), lambda c, who: c.retitle("Disk full", who))
    org.cases.watch_case(case_id=case.id, user_uuid=org.user_id)
    make_comment(org, case.id, "fixed")

    # The client's TimelineCellType enum only has COMMENT: it must still return every cell, not raise.
    cells = timeline(org, case.id, sort_ascending=True)
    kinds = [str(c.attributes.type) for c in cells]
    assert kinds == [
        "CASE_CREATED",
        "COMMENT",
        "STATUS_CHANGE",
        "PRIORITY_CHANGE",
        "TITLE_CHANGE",
        "WATCHER_CHANGE",
        "COMMENT",
    ]
    # What the client does with a type it does not know: keeps the data, marks the cell as unparsed.
    assert [c.attributes._unparsed for c in cells] == [k != "COMMENT" for k in kinds]
    status = cells[2].attributes
    assert status.cell_content["changes"]["status"] == {"old": "OPEN", "new": "IN_PROGRESS"}
    assert status.author.content.id == org.user_id
    assert cells[5].attributes.cell_content["user_id"] == org.user_id

    newest_first = timeline(org, case.id)
    assert [c.id for c in newest_first] == [c.id for c in reversed(cells)]


def test_timeline_pages_partition_the_cells(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    for n in range(6):
        make_comment(org, case.id, f"note {n}")
    everything = [c.id for c in timeline(org, case.id, sort_ascending=True)]
    assert len(everything) == 7  # CASE_CREATED + 6 comments
    pages = [[c.id for c in timeline(org, case.id, sort_ascending=True, page_size=3, page_number=n)] for n in range(4)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [cell for page in pages for cell in page] == everything
    newest = timeline(org, case.id, page_size=2)
    assert [c.attributes.cell_content.message for c in newest] == ["note 5", "note 4"]
