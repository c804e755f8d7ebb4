"""Case insights: request validation and the events of adding, re-pointing and removing one."""

from __future__ import annotations

import pytest

from casem.domain.errors import InvalidInput
from casem.domain.insights import MAX_PER_REQUEST, REF_MAX, RESOURCE_ID_MAX, CaseInsight, InsightRef, validate_insights

POINTER = "/data/attributes/insights"


def item(kind: str = "MONITOR", resource_id: str = "123", ref: str = "/monitors/123") -> dict[str, str]:
    return {"type": kind, "resource_id": resource_id, "ref": ref}


def test_insights_are_cleaned_and_a_repeated_one_takes_the_last_ref() -> None:
    cleaned = validate_insights([item(), item("INCIDENT", "7", "/incidents/7"), item(ref="/monitors/123?v=2")])
    assert cleaned == [InsightRef("MONITOR", "123", "/monitors/123?v=2"), InsightRef("INCIDENT", "7", "/incidents/7")]
    assert len(validate_insights([item(resource_id=str(i)) for i in range(MAX_PER_REQUEST)])) == MAX_PER_REQUEST


@pytest.mark.parametrize(
    ("items", "pointer", "detail"),
    [
        ([], POINTER, "insights must be a list of 1 to 100 insights"),
        ({"type": "MONITOR"}, POINTER, "insights must be a list of 1 to 100 insights"),
        ([item()] * (MAX_PER_REQUEST + 1), POINTER, "insights must be a list of 1 to 100 insights"),
        ([item(), "MONITOR"], f"{POINTER}/1", "an insight is an object with type, resource_id and ref"),
        ([item(kind="monitor")], f"{POINTER}/0/type", "invalid value 'monitor': must be one of SECURITY_SIGNAL"),
        ([item(resource_id=" ")], f"{POINTER}/0/resource_id", "resource_id must be a non-empty string of at most 255"),
        (
            [item(resource_id="x" * (RESOURCE_ID_MAX + 1))],
            f"{POINTER}/0/resource_id",
            "resource_id must be a non-empty string",
        ),
        ([item(ref="")], f"{POINTER}/0/ref", "ref must be a non-empty string of at most 2048 characters"),
        ([item(ref="x" * (REF_MAX + 1))], f"{POINTER}/0/ref", "ref must be a non-empty string"),
        ([{"type": "MONITOR", "ref": "/m"}], f"{POINTER}/0/resource_id", "resource_id must be"),
    ],
)
def test_bad_insights_point_at_the_member(items: object, pointer: str, detail: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_insights(items)
    assert raised.value.pointer == pointer and raised.value.detail.startswith(detail)


def test_an_insights_events() -> None:
    insight = CaseInsight.add(
        actor_id="u1", case_id="c1", type="MONITOR", resource_id="123", org_id="o1", ref="/monitors/123"
    )
    assert insight.created_by_id == "u1"
    assert not insight.point_to("/monitors/123", "u2")  # unchanged: nothing recorded
    assert insight.point_to("/monitors/123?v=2", "u2") and insight.ref == "/monitors/123?v=2"
    insight.remove("u3")
    added, updated, removed = insight.collect_events()
    assert [(e.type, e.actor_id, e.case_id, e.subject_id) for e in (added, updated, removed)] == [
        ("case.insight_added", "u1", "c1", "c1"),
        ("case.insight_updated", "u2", "c1", "c1"),
        ("case.insight_removed", "u3", "c1", "c1"),
    ]
    assert added.data == {"type": "MONITOR", "resource_id": "123", "ref": "/monitors/123"}
    assert updated.data == {
        "type": "MONITOR",
        "resource_id": "123",
        "old_ref": "/monitors/123",
        "ref": "/monitors/123?v=2",
    }
    assert removed.data == {"type": "MONITOR", "resource_id": "123", "ref": "/monitors/123?v=2"}
