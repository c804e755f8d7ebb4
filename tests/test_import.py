"""`casem import`: ids, keys and case keys survive; a second run changes nothing; bad files name the record."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from datadog_api_client.exceptions import ForbiddenException, NotFoundException
from typer.testing import CliRunner

from casem.adapters.storage.tables import credentials, domain_events
from casem.app.identity.service import BootstrapCredentials
from casem.app.importer import ImportFileError, ImportReport, import_file
from casem.cli.import_cmd import import_command
from casem.domain.cases import STANDARD_TYPE_ID
from casem.domain.identity import hash_key
from casem.topology.tenants import TENANTS
from tests.api.helpers import make_case
from tests.support.api_client import OrgClient, client_for
from tests.support.live_server import LiveServer

# Plaintext application keys of each exported org: the file itself only carries their hashes.
APP_SECRETS: dict[str, str] = {}


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def export() -> dict[str, Any]:
    """An export from another deployment: one org with every kind of record."""
    org, user, admin, team, api, app, ctype, attr, project = ids(9)
    case_ids = ids(3)
    key = ("M" + uuid.uuid4().hex[:6]).upper()
    api_secret, app_secret = uuid.uuid4().hex, uuid.uuid4().hex + uuid.uuid4().hex[:8]
    APP_SECRETS[org] = app_secret
    return {
        "version": 1,
        "orgs": [
            {
                "id": org,
                "name": "Migrated Inc",
                "users": [
                    {"id": admin, "email": "Admin@Migrated.example", "name": "Admin"},
                    {"id": user, "email": "ana@migrated.example", "name": "Ana", "title": "SRE"},
                ],
                "teams": [{"id": team, "handle": "sre", "name": "SRE", "description": "Keeps it up"}],
                "keys": [
                    {"id": api, "kind": "api", "name": "migrated", "secret": api_secret},
                    # Pre-hashed, as exported from another casem: the plaintext never travels.
                    {
                        "id": app,
                        "kind": "application",
                        "name": "migrated",
                        "user_id": admin,
                        "key_hash": hashlib.sha256(app_secret.encode()).hexdigest(),
                        "last4": app_secret[-4:],
                    },
                ],
                "case_types": [{"id": ctype, "name": "Incident", "description": "Production incidents", "emoji": "🔥"}],
                "custom_attributes": [
                    {
                        "id": attr,
                        "case_type_id": ctype,
                        "key": "region",
                        "display_name": "Region",
                        "type": "SELECT",
                        "options": ["us-east-1", "eu-west-1"],
                    }
                ],
                "projects": [{"id": project, "key": key, "name": "Migrated", "enabled_custom_case_types": [ctype]}],
                "cases": [
                    {
                        "id": case_ids[0],
                        "project_id": project,
                        "key": f"{key}-7",
                        "title": "Checkout is down",
                        "type_id": ctype,
                        "priority": "P1",
                        "status": "CLOSED",
                        "assignee_id": user,
                        "custom_attributes": {"region": "eu-west-1"},
                        "created_at": "2024-03-01T10:00:00Z",
                        "created_by_id": admin,
                    },
                    {"id": case_ids[1], "project_id": project, "key": f"{key}-12", "title": "Slow search"},
                    {"id": case_ids[2], "project_id": project, "key": f"{key}-3", "title": "Typo on login page"},
                ],
            }
        ],
    }


def write(tmp_path: Path, document: dict[str, Any], name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def run_import(server: LiveServer, path: Path) -> ImportReport:
    return server.call(import_file(server.context, path))


def outbox(server: LiveServer, org_id: str) -> list[tuple[str, str | None]]:
    async def read() -> list[tuple[str, str | None]]:
        async with server.context.uow(read_only=True) as uow:
            rows = await uow.execute(
                sa.select(domain_events.c.type, domain_events.c.case_id)
                .where(domain_events.c.org_id == org_id)
                .order_by(domain_events.c.seq)
            )
            return [(row.type, row.case_id) for row in rows]

    return server.call(read())


def stored_hashes(server: LiveServer, org_id: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        async with server.context.uow(read_only=True) as uow:
            rows = await uow.execute(
                sa.select(credentials.c.id, credentials.c.key_hash).where(credentials.c.org_id == org_id)
            )
            return {row.id: row.key_hash for row in rows}

    return server.call(read())


def imported_client(server: LiveServer, org: dict[str, Any]) -> OrgClient:
    admin = org["users"][0]["id"]
    api_secret = org["keys"][0]["secret"]
    return client_for(server, BootstrapCredentials(org["id"], admin, api_secret, APP_SECRETS[org["id"]]))


def counts(report: ImportReport) -> dict[str, tuple[int, int, int]]:
    """Created, unchanged and conflicting records of each kind the import touched."""
    return {
        k: (c.created, c.unchanged, c.conflicts)
        for k, c in report.counts.items()
        if c.created or c.unchanged or c.conflicts
    }


def test_import_keeps_ids_and_keys_and_a_second_run_changes_nothing(server: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    document = export()
    org = document["orgs"][0]
    path = write(tmp_path, document)

    first = run_import(server, path)
    assert counts(first) == {
        "orgs": (1, 0, 0),
        "users": (2, 0, 0),
        "teams": (1, 0, 0),
        "keys": (2, 0, 0),
        "case_types": (1, 0, 0),
        "custom_attributes": (1, 0, 0),
        "projects": (1, 0, 0),
        "cases": (3, 0, 0),
    }
    assert first.conflicts == []

    # The imported key pair works through the official client, and every id reads back.
    client = imported_client(server, org)
    assert client.users.get_user(user_id=org["users"][1]["id"]).data.attributes.title == "SRE"
    assert client.teams.get_team(team_id=org["teams"][0]["id"]).data.attributes.handle == "sre"
    types = client.types.get_all_case_types().data
    assert [t.id for t in types] == [STANDARD_TYPE_ID, org["case_types"][0]["id"]]
    attribute = client.attributes.get_all_custom_attributes().data[0]
    assert (attribute.id, attribute.attributes.type_data) == (
        org["custom_attributes"][0]["id"],
        {"options": [{"value": "us-east-1"}, {"value": "eu-west-1"}]},
    )
    project = client.cases.get_project(project_id=org["projects"][0]["id"]).data
    closed = client.cases.get_case(case_id=f"{project.attributes.key}-7").data
    assert closed.id == org["cases"][0]["id"]
    assert (str(closed.attributes.status), str(closed.attributes.priority)) == ("CLOSED", "P1")
    assert closed.attributes.custom_attributes["region"].value == "eu-west-1"
    assert closed.attributes.created_at.isoformat().startswith("2024-03-01T10:00:00")
    assert closed.relationships.assignee.data.id == org["users"][1]["id"]
    assert closed.relationships.created_by.data.id == org["users"][0]["id"]
    assert client.cases.get_case(case_id=org["cases"][1]["id"]).data.attributes.key == f"{project.attributes.key}-12"
    # The counter moved past the highest imported number: no imported key is ever handed out again.
    assert make_case(client, project.id).attributes.key == f"{project.attributes.key}-13"

    # Keys are stored hashed: the plaintext secret and the pre-hashed key both became SHA-256 hashes.
    stored = stored_hashes(server, org["id"])
    app_hash = hash_key(APP_SECRETS[org["id"]])
    assert stored == {org["keys"][0]["id"]: hash_key(org["keys"][0]["secret"]), org["keys"][1]["id"]: app_hash}

    events = outbox(server, org["id"])
    created = [case_id for kind, case_id in events if kind == "com.casem.case.created.v1"]
    assert sorted(created[:3]) == sorted(c["id"] for c in org["cases"])
    assert len(created) == 4  # the three imported cases and the one made through the API

    second = run_import(server, path)
    assert counts(second) == {kind: (0, n, 0) for kind, (n, _, _) in counts(first).items()}
    assert outbox(server, org["id"]) == events
    client.api_client.close()
    client.http.close()


def test_a_conflicting_record_is_reported_and_not_overwritten(server: LiveServer, tmp_path: Path) -> None:  # noqa: F811
    document = export()
    run_import(server, write(tmp_path, document))
    org = document["orgs"][0]
    changed = copy.deepcopy(document)
    changed["orgs"][0]["cases"][1]["title"] = "Search is fast now"
    changed["orgs"][0]["case_types"][0]["name"] = "Outage"

    report = run_import(server, write(tmp_path, changed, "changed.json"))
    assert counts(report)["cases"] == (0, 2, 1)
    assert counts(report)["case_types"] == (0, 0, 1)
    assert any(
        f"orgs[0].cases[1] (id {org['cases'][1]['id']})" in line and "'Search is fast now'" in line
        for line in report.conflicts
    )
    client = imported_client(server, org)
    assert client.cases.get_case(case_id=org["cases"][1]["id"]).data.attributes.title == "Slow search"
    assert client.types.get_all_case_types().data[1].attributes.name == "Incident"
    client.api_client.close()
    client.http.close()


def _broken(mutate: Any) -> dict[str, Any]:
    document = export()
    mutate(document["orgs"][0])
    return document


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (lambda o: o["cases"][1].pop("title"), ["orgs[0].cases[1] (id ", "field 'title' is required"]),
        (lambda o: o["users"][0].update(email_address="x"), ["orgs[0].users[0]", "'email_address' is not a known"]),
        (lambda o: o["case_types"][0].update(id="not-a-uuid"), ["orgs[0].case_types[0]", "field 'id'", "UUID"]),
        (lambda o: o["keys"][0].update(key_hash="0" * 64), ["orgs[0].keys[0]", "'secret' and 'key_hash'"]),
        (
            lambda o: o["cases"][0]["custom_attributes"].update(region="mars-1"),
            ["orgs[0].cases[0]", "field 'region'", "must be one of"],
        ),
        (lambda o: o["cases"][2].update(key="OTHER-3"), ["orgs[0].cases[2]", "field 'key'"]),
        (lambda o: o["cases"][2].update(priority="URGENT"), ["orgs[0].cases[2]", "field 'priority'", "P1"]),
    ],
)
def test_a_malformed_file_names_the_record_and_field(
    server: LiveServer,  # noqa: F811
    tmp_path: Path,
    mutate: Any,
    fragments: list[str],
) -> None:
    document = _broken(mutate)
    with pytest.raises(ImportFileError) as err:
        run_import(server, write(tmp_path, document))
    for fragment in fragments:
        assert fragment in str(err.value)
    # Nothing of a bad case batch is written; a file-level error writes nothing at all (so the keys fail).
    client = imported_client(server, document["orgs"][0])
    for case in document["orgs"][0]["cases"]:
        with pytest.raises((NotFoundException, ForbiddenException)):
            client.cases.get_case(case_id=case["id"])
    client.api_client.close()
    client.http.close()


def test_the_cli_imports_with_a_summary_and_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for t in TENANTS:
        monkeypatch.setenv(f"{t.env_prefix}_DSN", f"sqlite:///{tmp_path / (t.name + '.db')}")
    app = typer.Typer()
    app.command("import")(import_command)
    app.callback()(lambda: None)
    path = write(tmp_path, export())
    runner = CliRunner()

    first = runner.invoke(app, ["import", str(path), "--quiet"], terminal_width=160)
    assert first.exit_code == 0, first.output
    assert "cases" in first.output and "3" in first.output
    second = runner.invoke(app, ["import", str(path), "--quiet"], terminal_width=160)
    assert second.exit_code == 0, second.output
    rows = {cells[0]: cells[1:] for cells in _table(second.output)}
    assert rows["cases"] == ["0", "3", "0", "0"]
    assert rows["keys"] == ["0", "2", "0", "0"]

    bad = write(tmp_path, _broken(lambda o: o["cases"][0].pop("project_id")), "bad.json")
    failed = runner.invoke(app, ["import", str(bad)], terminal_width=160)
    assert failed.exit_code == 2
    assert "orgs[0].cases[0]" in failed.output and "project_id" in failed.output


def _table(output: str) -> list[list[str]]:
    """The rows of the summary table as stripped cells."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in output.splitlines() if line.count("│") == 6]
