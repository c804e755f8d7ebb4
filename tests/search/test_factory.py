"""Which adapter the environment selects."""

from __future__ import annotations

from pathlib import Path

import pytest

from casem.adapters.search import EmbeddedSearch, OpenSearchSearch, SearchBackendError, search_from_env


async def test_embedded_by_default_under_the_data_dir(tmp_path: Path) -> None:
    port = search_from_env({"CASEM_DATA_DIR": str(tmp_path)})
    assert isinstance(port, EmbeddedSearch)
    await port.ensure_index("on-call")
    assert (tmp_path / "search-on-call.db").exists()
    await port.close()


async def test_opensearch_when_a_url_is_set() -> None:
    port = search_from_env(
        {
            "CASEM_SEARCH_URL": "http://127.0.0.1:1",
            "CASEM_SEARCH_INDEX_PREFIX": "staging-",
            "CASEM_SEARCH_WRITE_REFRESH": "wait_for",
        }
    )
    assert isinstance(port, OpenSearchSearch)
    assert port.alias("case-management") == "staging-casem-v8"
    assert port.write_refresh == "wait_for"
    await port.close()


def test_opensearch_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="lower case"):
        OpenSearchSearch("http://x", index_prefix="Upper-")
    with pytest.raises(ValueError, match="write_refresh"):
        OpenSearchSearch("http://x", write_refresh="sometimes")


async def test_an_unreachable_engine_is_a_backend_error() -> None:
    port = OpenSearchSearch("http://127.0.0.1:1", timeout=2)
    with pytest.raises(SearchBackendError, match="GET /_alias/casem-v8"):
        await port.ensure_index("case-management")
    await port.close()
