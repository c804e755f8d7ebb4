"""`casem import` as operators use it: a dry run that writes nothing, `--on-conflict replace` letting the file win,
`--reissue-keys` writing new secrets to a file only its owner reads (Datadog exports carry no secrets)."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from casem.adapters.storage.tables import cases, credentials, domain_events, orgs, projects, timeline_cells
from casem.app.importer.service import ImportOptions, import_file
from casem.cli.import_cmd import import_command
from casem.topology.tenants import TENANTS
from tests.support.live_server import LiveServer
from tests.test_import import _table, export, write


def _count(server: LiveServer, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:  # noqa: F811
    async def read() -> int:
        async with server.context.uow(read_only=True) as uow:
            return await uow.scalar(sa.select(sa.func.count()).select_from(table).where(*where))

    return server.call(read())


def test_a_dry_run_reports_what_would_change_and_writes_nothing(server: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    document = export()
    org_id = document["orgs"][0]["id"]
    path = write(tmp_path, document)
    events = _count(server, domain_events)
    dry = server.call(import_file(server.context, path, options=ImportOptions(dry_run=True)))
    assert dry.dry_run and dry.counts["cases"].created == 3 and dry.counts["orgs"].created == 1
    assert _count(server, orgs, orgs.c.id == org_id) == 0
    assert _count(server, domain_events) == events
    # The real run then does what the dry run announced.
    real = server.call(import_file(server.context, path))
    assert {k: v.created for k, v in real.counts.items()} == {k: v.created for k, v in dry.counts.items()}


def test_replace_lets_the_file_win_and_records_it(server: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    document = export()
    org = document["orgs"][0]
    server.call(import_file(server.context, write(tmp_path, document)))
    org["projects"][0]["name"] = "Renamed in the export"
    org["cases"][1]["title"] = "Slow search (retitled)"
    org["cases"][1]["priority"] = "P2"
    org["users"][1]["name"] = "Ana Maria"
    changed = write(tmp_path, document, "changed.json")

    kept = server.call(import_file(server.context, changed))
    assert (kept.counts["cases"].conflicts, kept.counts["projects"].conflicts, kept.counts["users"].conflicts) == (
        1,
        1,
        1,
    )
    replaced = server.call(import_file(server.context, changed, options=ImportOptions(on_conflict="replace")))
    assert replaced.conflicts == []
    counts = replaced.counts
    assert (counts["cases"].replaced, counts["projects"].replaced, counts["users"].replaced) == (1, 1, 1)
    assert counts["cases"].unchanged == 2

    async def read():  # type: ignore[no-untyped-def]
        async with server.context.uow(read_only=True) as uow:
            case = (await uow.execute(sa.select(cases).where(cases.c.id == org["cases"][1]["id"]))).one()
            name = await uow.scalar(sa.select(projects.c.name).where(projects.c.id == org["projects"][0]["id"]))
            cell = (
                await uow.execute(
                    sa.select(timeline_cells).where(
                        timeline_cells.c.case_id == case.id, timeline_cells.c.type == "IMPORT_CHANGE"
                    )
                )
            ).one()
            return case, name, cell

    case, name, cell = server.call(read())
    assert (case.title, case.priority, name) == ("Slow search (retitled)", "P2", "Renamed in the export")
    assert cell.content["changes"]["title"] == {"old": "Slow search", "new": "Slow search (retitled)"}
    # Once replaced, the file and the store agree: nothing more to do.
    again = server.call(import_file(server.context, changed, options=ImportOptions(on_conflict="replace")))
    assert again.replaced == 0 and again.created == 0 and again.conflicts == []


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    for t in TENANTS:
        monkeypatch.setenv(f"{t.env_prefix}_DSN", f"sqlite:///{tmp_path / (t.name + '.db')}")
    monkeypatch.setenv("CASEM_DATA_DIR", str(tmp_path / "data"))
    app = typer.Typer()
    app.command("import")(import_command)
    app.callback()(lambda: None)
    return app


def _hashes(tmp_path: Path) -> dict[str, str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'case-management.db'}")
    with engine.connect() as conn:
        found = {row.id: row.key_hash for row in conn.execute(sa.select(credentials.c.id, credentials.c.key_hash))}
    engine.dispose()
    return found


def test_reissue_keys_writes_new_secrets_to_a_private_file(cli: typer.Typer, tmp_path: Path) -> None:
    document = export()
    keys = document["orgs"][0]["keys"]
    for key in keys:  # as Datadog exports them: no secret, no hash
        key.pop("secret", None)
        key.pop("key_hash", None)
        key.pop("last4", None)
    path = write(tmp_path, document)
    runner = CliRunner()
    refused = runner.invoke(cli, ["import", str(path), "--quiet"], terminal_width=200)
    assert refused.exit_code == 2 and "--reissue-keys" in refused.output

    first = runner.invoke(cli, ["import", str(path), "--quiet", "--reissue-keys"], terminal_width=200)
    assert first.exit_code == 0, first.output
    written = [p for p in (tmp_path / "data").iterdir() if p.name.startswith("reissued-keys-")]
    assert len(written) == 1 and str(written[0]) in first.output.replace("\n", "")
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o600
    secrets = {k["id"]: k for k in json.loads(written[0].read_text())["keys"]}
    assert set(secrets) == {k["id"] for k in keys}
    stored = _hashes(tmp_path)
    assert all(stored[i] == hashlib.sha256(k["secret"].encode()).hexdigest() for i, k in secrets.items())
    assert {k["kind"] for k in secrets.values()} == {"api", "application"}

    # Again, to a chosen file: every key gets another secret, and the old ones stop working.
    chosen = tmp_path / "new-keys.json"
    second = runner.invoke(
        cli, ["import", str(path), "--quiet", "--reissue-keys", "--keys-file", str(chosen)], terminal_width=200
    )
    assert second.exit_code == 0, second.output
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o600
    rows = {cells[0]: cells[1:] for cells in _table(second.output)}
    assert rows["keys"] == ["0", "2", "0", "0"]
    renewed = {k["id"]: k["secret"] for k in json.loads(chosen.read_text())["keys"]}
    assert all(renewed[i] != secrets[i]["secret"] for i in renewed)
    assert all(_hashes(tmp_path)[i] == hashlib.sha256(s.encode()).hexdigest() for i, s in renewed.items())


def test_the_cli_dry_run_and_conflict_policy(cli: typer.Typer, tmp_path: Path) -> None:
    document = export()
    path = write(tmp_path, document)
    runner = CliRunner()
    dry = runner.invoke(cli, ["import", str(path), "--quiet", "--dry-run"], terminal_width=200)
    assert dry.exit_code == 0 and "dry run" in dry.output
    assert {cells[0]: cells[1:] for cells in _table(dry.output)}["cases"] == ["3", "0", "0", "0"]
    assert runner.invoke(cli, ["import", str(path), "--quiet"], terminal_width=200).exit_code == 0
    document["orgs"][0]["cases"][2]["title"] = "Typo fixed"
    changed = write(tmp_path, document, "changed.json")
    kept = runner.invoke(cli, ["import", str(changed), "--quiet"], terminal_width=200)
    assert kept.exit_code == 1 and "conflict" in kept.output
    replaced = runner.invoke(cli, ["import", str(changed), "--quiet", "--on-conflict", "replace"], terminal_width=200)
    assert replaced.exit_code == 0, replaced.output
    assert {cells[0]: cells[1:] for cells in _table(replaced.output)}["cases"] == ["0", "2", "0", "1"]
    wrong = runner.invoke(cli, ["import", str(changed), "--on-conflict", "merge"], terminal_width=200)
    assert wrong.exit_code == 2 and "keep or replace" in wrong.output
