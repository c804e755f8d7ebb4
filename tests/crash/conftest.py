from tests.bus.conftest import harness  # noqa: F401 - bus adapters (embedded, Kafka)
from tests.relay.conftest import context  # noqa: F401 - tenant databases (SQLite, PostgreSQL)
