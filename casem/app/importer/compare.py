"""Compare two orgs as two Datadog-compatible APIs serve them: after a migration, the target must hold what the
source holds (the target may hold more: the user whose keys read it, for one).

`compare_orgs(source, target)` reads both through the same `Source` interface the migration reads with and
answers the differences, one sentence each; none means the orgs are equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from casem.app.importer.migration import Source
from casem.domain.cases import STANDARD_TYPE_ID

CASE_FIELDS = (
    "key",
    "title",
    "description",
    "status",
    "status_group",
    "priority",
    "type_id",
    "attributes",
    "custom_attributes",
    "created_at",
    "modified_at",
    "closed_at",
    "archived_at",
    "due_date",
    "resolved_reason",
)
TYPE_FIELDS = ("name", "description", "emoji")
ATTRIBUTE_FIELDS = ("case_type_id", "key", "display_name", "type", "is_multi", "type_data")
RELATIONSHIPS = ("assignee", "created_by", "modified_by", "project")


def _by_id(resources: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in resources}


def _rel(resource: dict[str, Any], name: str) -> Any:
    return ((resource.get("relationships") or {}).get(name) or {}).get("data")


def _same_set(what: str, a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]], strict: bool) -> list[str]:
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a)) if strict else []
    found = [f"{what} {i} is missing from the target" for i in missing[:20]]
    found += [f"{what} {i} is only in the target" for i in extra[:20]]
    if len(missing) > 20 or len(extra) > 20:
        found.append(f"... {what}: {len(missing)} missing, {len(extra)} extra in all")
    return found


def _attributes(what: str, ident: str, a: dict[str, Any], b: dict[str, Any], names: Iterable[str]) -> list[str]:
    return [
        f"{what} {ident}: {name} is {a.get(name)!r} in the source but {b.get(name)!r} in the target"
        for name in names
        if a.get(name) != b.get(name)
    ]


def _cell(cell: dict[str, Any]) -> tuple[Any, ...]:
    a = cell.get("attributes") or {}
    author = ((a.get("author") or {}).get("content") or {}).get("id")
    return (
        a.get("type"),
        a.get("cell_content"),
        author,
        a.get("created_at"),
        a.get("modified_at"),
        a.get("deleted_at"),
    )


def compare_orgs(source: Source, target: Source, *, page_size: int = 100, concurrency: int = 8) -> list[str]:
    """Every difference between the source's org and the target's, as sentences (empty: equal)."""
    differences: list[str] = []
    users_a, users_b = _by_id(source.users()), _by_id(target.users())
    differences += _same_set("user", users_a, users_b, strict=False)
    for i in users_a.keys() & users_b.keys():
        names = ("email", "handle", "name", "title", "disabled")
        differences += _attributes("user", i, users_a[i]["attributes"], users_b[i]["attributes"], names)
    configuration = (
        ("case type", lambda s: [t for t in s.case_types() if t["id"] != STANDARD_TYPE_ID], TYPE_FIELDS),
        ("custom attribute", lambda s: s.custom_attributes(), ATTRIBUTE_FIELDS),
        ("project", lambda s: s.projects(), ("key", "name", "enabled_custom_case_types", "settings")),
        ("team", lambda s: list(s.teams()), ("handle", "name", "description")),
    )
    for what, read, names in configuration:
        a, b = _by_id(read(source)), _by_id(read(target))
        differences += _same_set(what, a, b, strict=what != "team")
        for i in a.keys() & b.keys():
            differences += _attributes(what, i, a[i]["attributes"], b[i]["attributes"], names)
    for project_id in _by_id(source.projects()):
        for what, read in (
            ("view", lambda s, p=project_id: s.views(p)),
            ("automation rule", lambda s, p=project_id: s.automation_rules(p)),
            ("notification rule", lambda s, p=project_id: s.notification_rules(p)),
        ):
            a, b = _by_id(read(source)), _by_id(read(target))
            differences += _same_set(what, a, b, strict=True)
            for i in a.keys() & b.keys():
                names = set(a[i].get("attributes") or {}) - {"created_at", "modified_at"}
                differences += _attributes(what, i, a[i]["attributes"], b[i]["attributes"], sorted(names))
    cases_a, cases_b = _all_cases(source, page_size), _all_cases(target, page_size)
    differences += _same_set("case", cases_a, cases_b, strict=True)
    common = sorted(cases_a.keys() & cases_b.keys())
    for i in common:
        differences += _attributes("case", i, cases_a[i]["attributes"], cases_b[i]["attributes"], CASE_FIELDS)
        for name in RELATIONSHIPS:
            if _rel(cases_a[i], name) != _rel(cases_b[i], name):
                differences.append(f"case {i}: relationship {name} differs")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for i, found in zip(common, pool.map(lambda c: _case_details(source, target, c), common), strict=True):
            differences += [f"case {i}: {d}" for d in found]
    return differences


def _all_cases(api: Source, page_size: int) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        cases, _total = api.cases(page, page_size)
        found |= _by_id(cases)
        if len(cases) < page_size:
            return found
        page += 1


def _case_details(source: Source, target: Source, case_id: str) -> list[str]:
    found = []
    cells_a, cells_b = _by_id(source.timeline(case_id)), _by_id(target.timeline(case_id))
    if set(cells_a) != set(cells_b):
        found.append(f"timeline cells differ ({len(cells_a)} in the source, {len(cells_b)} in the target)")
    found += [
        f"timeline cell {c} differs" for c in cells_a.keys() & cells_b.keys() if _cell(cells_a[c]) != _cell(cells_b[c])
    ]
    if {w["id"] for w in source.watchers(case_id)} != {w["id"] for w in target.watchers(case_id)}:
        found.append("watchers differ")
    links_a, links_b = _by_id(source.links(case_id)), _by_id(target.links(case_id))
    if {i: v["attributes"] for i, v in links_a.items()} != {i: v["attributes"] for i, v in links_b.items()}:
        found.append("links differ")
    return found
