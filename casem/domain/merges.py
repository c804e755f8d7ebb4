"""Merging duplicate cases into a primary: the pure rules. Pure Python: no framework, driver or transport.

A merge moves each duplicate's timeline into the primary (copies keep their provenance: original case,
cell, author and time), unions attributes and watchers into the primary, links the duplicate to the
primary, closes the duplicate with the resolved reason "duplicate of KEY" and records `case.merged` on it.
The caseworker carries this out one duplicate per transaction (casem/services/caseworker/merges.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from casem.domain.cases import MERGED
from casem.domain.errors import InvalidInput

__all__ = ["MERGED"]  # re-exported: the merge rules speak of it
DUPLICATE_OF = "duplicate_of"  # the link kind: duplicate → primary
MAX_DUPLICATES = 100  # one request's worth; a merge is one workflow with one activity per duplicate
MAX_ATTRIBUTE_VALUES = 100  # cases.validate_attributes' limit per key: a union past it keeps the first ones
PROVENANCE = "merged_from"  # the content member of a copied cell naming where it came from
# Fixed namespace: an automatic merge's id derives from the suggestion event, so redelivery finds the same merge.
AUTO_MERGE_NAMESPACE = uuid.UUID("6c7a3f0e-54b8-4c53-9d0b-7a0f1f8d2e11")


class MergeStatus(StrEnum):
    PENDING = "PENDING"  # accepted, the workflow has not begun
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"  # the merge could not begin (e.g. the primary is gone); nothing was merged


class Outcome(StrEnum):
    """What became of one duplicate."""

    MERGED = "merged"
    MISSING = "missing"  # deleted (or purged) before its turn
    ALREADY_MERGED = "already_merged"  # linked to another primary by an earlier merge


def resolved_reason(primary_key: str) -> str:
    return f"duplicate of {primary_key}"


def merge_workflow_id(merge_id: str) -> str:
    return f"case-merge-{merge_id}"


def auto_merge_id(suggestion_event_id: str) -> str:
    return str(uuid.uuid5(AUTO_MERGE_NAMESPACE, suggestion_event_id))


def validate_duplicates(primary_id: str, duplicate_ids: Sequence[str], pointer: str) -> list[str]:
    """Distinct ids, in the order given, none of them the primary."""
    if not duplicate_ids:
        raise InvalidInput("a merge needs at least one duplicate", pointer)
    if len(duplicate_ids) > MAX_DUPLICATES:
        raise InvalidInput(f"{len(duplicate_ids)} duplicates; a merge takes at most {MAX_DUPLICATES}", pointer)
    if primary_id in duplicate_ids:
        raise InvalidInput("a case cannot be merged into itself", pointer)
    return list(dict.fromkeys(duplicate_ids))


def union_attributes(primary: Mapping[str, list[str]], duplicate: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Every key of both; per key the primary's values first, then the duplicate's new ones, in order."""
    merged = {key: list(values) for key, values in primary.items()}
    for key, values in duplicate.items():
        merged[key] = list(dict.fromkeys([*merged.get(key, []), *values]))[:MAX_ATTRIBUTE_VALUES]
    return merged


def new_watchers(primary: Iterable[str], duplicate: Iterable[str]) -> list[str]:
    have = set(primary)
    return sorted(u for u in set(duplicate) if u not in have)


def copied_content(
    content: Mapping[str, Any],
    *,
    merge_id: str,
    case_id: str,
    case_key: str,
    cell_id: str,
    author_id: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    """A cell's content as copied to the primary. A cell that was itself copied by an earlier merge keeps
    its first provenance: it names the case where it was written, and `via` the merges it travelled through."""
    earlier = content.get(PROVENANCE)
    if isinstance(earlier, dict):
        provenance = {**earlier, "via": [*earlier.get("via", []), {"merge_id": merge_id, "case_id": case_id}]}
    else:
        provenance = {
            "merge_id": merge_id,
            "case_id": case_id,
            "case_key": case_key,
            "cell_id": cell_id,
            "author_id": author_id,
            "created_at": created_at.isoformat(),
        }
    return {**content, PROVENANCE: provenance}
