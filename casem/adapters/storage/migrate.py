"""Schema migrations (Alembic) for a tenant database, run from code: `casem db upgrade`, `casem up`, tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from casem.adapters.private_files import private_sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"


def sync_url(url: str) -> str:
    """Alembic runs synchronously: swap the async driver for its sync twin."""
    u = make_url(url)
    if u.drivername == "sqlite+aiosqlite":
        u = u.set(drivername="sqlite")
        if u.database and u.database != ":memory:":
            private_sqlite_file(u.database)  # 0600 before Alembic's engine creates it
    # psycopg 3 serves both sync and async under the same driver name.
    return u.render_as_string(hide_password=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
