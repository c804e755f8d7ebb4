"""Case search: the port and its two adapters (see port.py for the shared semantics)."""

from __future__ import annotations

import os

from casem.adapters.search.document import CaseDocument, InvalidDocumentError, document_checksum
from casem.adapters.search.embedded import EmbeddedSearch
from casem.adapters.search.opensearch import OpenSearchSearch
from casem.adapters.search.port import CountResult, SearchBackendError, SearchPage, SearchPort

__all__ = [
    "CaseDocument",
    "CountResult",
    "EmbeddedSearch",
    "InvalidDocumentError",
    "OpenSearchSearch",
    "SearchBackendError",
    "SearchPage",
    "SearchPort",
    "document_checksum",
    "search_from_env",
]


def search_from_env(env: dict[str, str] | None = None) -> SearchPort:
    """OpenSearch/Elasticsearch when CASEM_SEARCH_URL is set, else the embedded SQLite search
    under the data directory (CASEM_DATA_DIR, default ./var). CASEM_SEARCH_WRITE_REFRESH=wait_for
    makes each write return only once searchable (the indexer's "searchable immediately")."""
    env = dict(os.environ) if env is None else env
    url = env.get("CASEM_SEARCH_URL")
    if url:
        return OpenSearchSearch(
            url,
            index_prefix=env.get("CASEM_SEARCH_INDEX_PREFIX", ""),
            write_refresh=env.get("CASEM_SEARCH_WRITE_REFRESH", "false"),
        )
    from casem.topology.tenants import data_dir

    return EmbeddedSearch(data_dir(env))
