"""The data directory is for casem's user only: 0700 directories and 0600 files for the tenant databases
(with their WAL files), the embedded bus log, the search indexes, attachment blobs and the secret key;
files and directories an older casem left world-readable are narrowed when casem opens them."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from casem.adapters.blobs import open_blob_store
from casem.adapters.bus import open_bus
from casem.adapters.private_files import private_directory, private_file
from casem.adapters.search.embedded import EmbeddedSearch
from casem.adapters.secrets import secret_box_from_env
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    found = {".": mode(root)}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = Path(dirpath) / name
            found[str(full.relative_to(root))] = mode(full)
    return found


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "var"
    monkeypatch.setenv("CASEM_DATA_DIR", str(root))
    for name in ("CASEM_CASE_MANAGEMENT_DSN", "CASEM_ON_CALL_DSN", "CASEM_BUS_PATH", "CASEM_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(name, raising=False)
    previous = os.umask(0o022)  # the usual umask: what casem creates must not depend on it
    yield root
    os.umask(previous)


async def one_chunk() -> AsyncIterator[bytes]:
    yield b"attachment bytes"


async def _use_everything(root: Path) -> dict[str, int]:
    """Write through every embedded adapter; the modes are read while all are open (WAL files exist then)."""
    ctx = AppContext.open()  # migrates and opens every tenant database under the data dir
    bus = open_bus()
    search = EmbeddedSearch(root)
    try:
        async with ctx.uow() as uow:
            await bootstrap_org(uow, "acme", "a@example.com")
            await uow.commit()
        await bus.ensure_topic("private-test", 1)
        await search.ensure_index("case-management")
        blobs = open_blob_store(str(root / "blobs"))
        await blobs.put("org/case/attachment", one_chunk(), content_type="text/plain")
        secret_box_from_env().seal("x")
        return modes_under(root)
    finally:
        await search.close()
        await bus.close()
        await ctx.close()


def test_everything_casem_writes_in_its_data_dir_is_for_its_user_only(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEM_SECRET_KEYS", raising=False)  # the laptop default: a key file in the data dir
    found = asyncio.run(_use_everything(data_dir))
    expected = {"case-management.db", "case-management.db-wal", "bus.db", "search-case-management.db"}
    assert expected | {"secrets/secret.key", "blobs/org/case/attachment"} <= found.keys(), sorted(found)
    loose = {name: oct(m) for name, m in found.items() if m != (0o700 if (data_dir / name).is_dir() else 0o600)}
    assert loose == {}


def test_what_an_older_casem_left_readable_is_narrowed(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    database = data_dir / "case-management.db"
    database.write_bytes(b"")
    os.chmod(database, 0o644)
    private_file(database)
    assert (mode(data_dir), mode(database)) == (0o700, 0o600)


def test_directories_casem_did_not_make_outside_its_data_dir_keep_their_mode(data_dir: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    private_file(shared / "mine.db")
    assert mode(shared) == 0o755 and mode(shared / "mine.db") == 0o600
    assert mode(private_directory(tmp_path / "new" / "nested")) == 0o700
    assert mode(tmp_path / "new") == 0o700


def test_a_database_created_by_migrations_is_private_from_its_first_byte(data_dir: Path) -> None:
    from casem.adapters.storage.migrate import upgrade

    path = data_dir / "fresh.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    assert mode(path) == 0o600 and mode(data_dir) == 0o700
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM org_outbound_allow")).scalar() == 0
    engine.dispose()
