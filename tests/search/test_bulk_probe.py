"""Reading the answer to a bulk's probe item (is a reindex building?): only the engine saying the alias is not
there counts as "not building"; any other answer, or one that cannot be matched to the items sent, counts as
"building", which costs a second request but never loses a document. The engine's own answers are exercised in
tests/search/test_bulk_rejections.py; these are the answers that are hard to make a real node give."""

from __future__ import annotations

from typing import Any

from casem.adapters.search.opensearch import _probe_found

STORED = {"index": {"status": 201}}


def _answer(probe: dict[str, Any] | None, documents: int = 2) -> dict[str, Any]:
    items: list[dict[str, Any]] = [dict(STORED) for _ in range(documents)]
    if probe is not None:
        items.append({"update": probe})
    return {"items": items}


def test_an_absent_alias_means_no_reindex_and_the_probe_leaves_the_answer() -> None:
    answer = _answer({"status": 404, "error": {"type": "index_not_found_exception"}})
    assert _probe_found(answer, 2) is False
    assert answer["items"] == [STORED, STORED]  # the documents' items alone, for `_settle`


def test_a_missing_document_in_a_present_alias_means_a_reindex_is_building() -> None:
    answer = _answer({"status": 404, "error": {"type": "document_missing_exception"}})
    assert _probe_found(answer, 2) is True
    assert answer["items"] == [STORED, STORED]


def test_a_refused_probe_counts_as_building() -> None:
    answer = _answer({"status": 429, "error": {"type": "es_rejected_execution_exception"}})
    assert _probe_found(answer, 2) is True


def test_an_answer_of_another_length_counts_as_building_and_is_left_whole() -> None:
    answer = _answer(None)  # no item for the probe: `_settle` then refuses the answer as a whole
    assert _probe_found(answer, 2) is True
    assert len(answer["items"]) == 2
    assert _probe_found({}, 0) is True
