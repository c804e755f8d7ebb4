"""Listings fit the terminal: values wrap between words and after a hostname's dots, never inside a name;
columns that cannot fit are left out (least important first) and the output says so; JSON has every field."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from casem.cli.main import app
from casem.cli.output import Column, fit_columns, wrap
from casem.topology.datacenters import catalog

HOST = "case-management-rds-replica-replica.postgres.us1.staging.dog:5433"


@pytest.mark.parametrize("width", range(10, len(HOST) + 2))
def test_a_hostname_wraps_only_after_its_dots(width: int) -> None:
    lines = wrap([f"master {HOST}"], width)
    assert " ".join(lines).replace(". ", ".").replace("master ", "") == HOST
    for line in lines[:-1]:
        # a line ends where a word ends or right after a dot of the hostname
        assert line.endswith(".") or line == "master", lines
    longest_label = max(len(p) for p in re.findall(r"[^.]*\.?", HOST))
    assert all(len(line) <= max(width, longest_label) for line in lines)


def test_columns_are_left_out_least_important_first() -> None:
    columns = [Column("name", "n", priority=9), Column("notes", "x", priority=1), Column("where", "w", priority=5)]
    cells = [[["alpha"], ["a long note that wraps"], [HOST]]]
    wide, _ = fit_columns(columns, cells, 200)
    assert wide == columns
    narrow, widths = fit_columns(columns, cells, 50)
    assert [c.header for c in narrow] == ["name", "where"]
    assert sum(widths) + 1 + 3 * len(widths) <= 50
    assert fit_columns(columns, cells, None)[1] == [5, 22, len(HOST)]  # not a terminal: natural widths


@pytest.mark.parametrize("columns", [60, 80, 100, 140, 220])
def test_datacenters_fit_the_terminal_and_keep_names_whole(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    result = CliRunner().invoke(app, ["infra", "datacenters"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    left_out = " ".join(result.stdout.split("Left out to fit")[1:])
    for dc in catalog().datacenters:
        shown = [dc.name] + ([] if "Kubernetes" in left_out else [*dc.kubernetes_clusters])
        for host in shown:
            for piece in re.findall(r"[^.]+\.?", host):  # each dot-separated label is printed whole
                assert piece in result.stdout, (host, piece)
    if columns < 140:
        assert "Left out to fit" in result.stdout
    else:
        assert "Left out" not in result.stdout


def test_every_listing_speaks_json(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASEM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    datacenters = json.loads(runner.invoke(app, ["infra", "datacenters", "--format", "json"]).stdout)
    assert [d["name"] for d in datacenters] == list(catalog().names)
    config = json.loads(runner.invoke(app, ["config", "show", "--format", "json"]).stdout)
    assert config["datacenter"] == "local"
    status = runner.invoke(app, ["db", "status", "--format", "json"])
    assert status.exit_code == 0, status.output
    assert {row["tenant"] for row in json.loads(status.stdout)} == {"case-management", "on-call"}
    orgs = runner.invoke(app, ["admin", "list-orgs", "--format", "json"])
    assert orgs.exit_code == 0, orgs.output
    assert json.loads(orgs.stdout) == []


def test_dlq_list_shows_every_flavor_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from casem.adapters.bus.embedded import EmbeddedBus
    from casem.topology.topics import dead_letter_topic

    monkeypatch.setenv("CASEM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "160")
    for var in ("CASEM_KAFKA_BOOTSTRAP", "CASEM_BUS_PATH", "CASEM_BUS_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)

    async def dead_letter(flavors: list[str]) -> None:
        bus = EmbeddedBus(tmp_path / "bus.db")
        producer = bus.producer()
        for flavor in flavors:
            await bus.ensure_topic(dead_letter_topic(flavor), 1)
            headers = (("dlq_error", f"{flavor} broke".encode()), ("dlq_attempts", b"5"), ("dlq_source", b"t/0/1"))
            await producer.publish(dead_letter_topic(flavor), b"k", b"not an event", headers)
        await producer.close()
        await bus.close()

    asyncio.run(dead_letter(["webhook-delivery", "audit-trail"]))
    runner = CliRunner()
    table = runner.invoke(app, ["dlq", "list"])
    assert table.exit_code == 0, table.output
    assert "webhook-delivery broke" in table.stdout and "audit-trail broke" in table.stdout
    assert "2 dead letter(s)" in table.stdout
    rows = json.loads(runner.invoke(app, ["dlq", "list", "--format", "json"]).stdout)
    assert sorted((r["flavor"], r["error"], r["attempts"]) for r in rows) == [
        ("audit-trail", "audit-trail broke", 5),
        ("webhook-delivery", "webhook-delivery broke", 5),
    ]
    one = runner.invoke(app, ["dlq", "list", "--flavor", "analytics"])
    assert "no dead letters for analytics" in one.stdout
