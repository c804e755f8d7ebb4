"""Per-test-run tenant databases on SQLite (a temp dir) or PostgreSQL (fresh databases per xdist worker)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from casem.topology.tenants import TENANTS, DatabaseEndpoints, to_async_dsn
from tests.backends import engine_address

BACKENDS = ("sqlite", "postgres")


def _admin_dsn() -> str:
    return engine_address("postgres")


def create_postgres_database(label: str) -> str:
    """A new, empty database; returns its async DSN."""
    admin = _admin_dsn()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"casem_{worker}_{label}_{uuid.uuid4().hex[:8]}".replace("-", "_").lower()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(to_async_dsn(admin)).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_postgres_database(dsn: str) -> None:
    name = make_url(dsn).database
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def tenant_endpoints(backend: str, workdir: Path) -> Iterator[dict[str, DatabaseEndpoints]]:
    """Fresh databases for every tenant on the chosen backend, dropped afterwards."""
    if backend == "sqlite":
        yield {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{workdir / (t.name + '.db')}") for t in TENANTS}
        return
    created = {t.name: create_postgres_database(t.name) for t in TENANTS}
    try:
        yield {name: DatabaseEndpoints(master=dsn) for name, dsn in created.items()}
    finally:
        for dsn in created.values():
            drop_postgres_database(dsn)
