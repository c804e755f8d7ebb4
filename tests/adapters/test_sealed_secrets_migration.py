"""Migration 0014 seals the webhook signing secrets stored in plaintext before it, on SQLite and PostgreSQL,
and opens them again on the way down."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from casem.adapters.secrets import PREFIX, SecretBox
from casem.adapters.storage.migrate import sync_url, upgrade
from casem.topology.tenants import CASE_MANAGEMENT
from tests.support.databases import tenant_endpoints

BEFORE = "0013_oncall"  # the revision before the one that seals
PLAINTEXT = "a-plaintext-secret-from-before"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with tenant_endpoints(request.param, tmp_path) as endpoints:
        yield endpoints[CASE_MANAGEMENT].master


def _secrets(url: str) -> dict[str, str | None]:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT name, secret FROM notification_endpoints")).all())
    finally:
        engine.dispose()


def test_plaintext_webhook_secrets_are_sealed_by_the_upgrade(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv("CASEM_SECRET_KEYS", key.decode())
    upgrade(database_url, BEFORE)
    engine = sa.create_engine(sync_url(database_url))
    with engine.begin() as conn:
        now = {"now": datetime.now(UTC)}
        conn.execute(sa.text("INSERT INTO orgs (id, name, created_at) VALUES ('o1', 'acme', :now)"), now)
        for name, secret in (("signed", PLAINTEXT), ("teams", None)):
            conn.execute(
                sa.text(
                    "INSERT INTO notification_endpoints (id, org_id, kind, name, url, secret, created_at) "
                    "VALUES (:id, 'o1', 'HTTP', :name, 'https://hooks.example.com/x', :secret, :now)"
                ),
                {"id": f"id-{name}", "name": name, "secret": secret, "now": datetime.now(UTC)},
            )
    engine.dispose()

    upgrade(database_url)
    stored = _secrets(database_url)
    assert stored["teams"] is None
    assert stored["signed"].startswith(PREFIX) and PLAINTEXT not in stored["signed"]
    assert SecretBox([key]).open(stored["signed"]) == PLAINTEXT
    upgrade(database_url)  # again: nothing sealed twice
    assert SecretBox([key]).open(_secrets(database_url)["signed"]) == PLAINTEXT

    from alembic import command

    from casem.adapters.storage.migrate import alembic_config

    command.downgrade(alembic_config(database_url), BEFORE)
    assert _secrets(database_url)["signed"] == PLAINTEXT
