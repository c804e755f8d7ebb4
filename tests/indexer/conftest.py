from tests.relay.conftest import context  # noqa: F401 - tenant databases (SQLite, PostgreSQL)
from tests.search.conftest import port  # noqa: F401 - search adapters (embedded, OpenSearch)
