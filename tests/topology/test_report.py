"""The generated infrastructure report carries every fact of the seed's tables."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casem.cli.main import app
from casem.infra import report
from casem.topology.datacenters import catalog
from casem.topology.services import SERVICES
from casem.topology.topics import TOPICS
from tests.topology import seed


def _joined(cell: list[str]) -> str:
    return " ".join(cell)


def test_messaging_table_equals_the_seed_cell_by_cell() -> None:
    header, rows = seed.messaging_table()
    table = report.messaging_table()
    assert table.headers == header
    assert [[_joined(c) for c in row] for row in table.rows] == rows
    assert [row[0][0] for row in table.rows] == [t.name for t in TOPICS]


def test_footprint_table_equals_the_seed_cell_by_cell() -> None:
    header, rows = seed.footprint_table()
    table = report.footprint_table()
    assert table.headers == header
    generated = [[_joined(c) for c in row] for row in table.rows]
    for seed_row, row in zip(rows, generated, strict=True):
        for column, seed_cell, cell in zip(header, seed_row, row, strict=True):
            assert cell == seed_cell, f"{seed_row[0]} / {column}"


def test_deployment_notes_carry_the_seed_notes(seed_datacenters: dict[str, seed.SeedDatacenter]) -> None:
    for section in report.build(with_diagrams=False).datacenters:
        s = seed_datacenters[section.dc.name]
        text = " ".join(section.notes).replace("`", "")
        assert ", ".join(s.notes_clusters) in text
        assert f"producer cluster {s.producer}, consumer cluster {s.consumer}" in text
        if s.broker_url:
            assert f"brokers reachable at {s.broker_url}" in text
        for label, pg in s.notes_postgres.items():
            if pg is None:
                assert f"{label} Postgres: tenant not deployed in this datacenter" in text
            else:
                assert f"{label} Postgres: master {pg.master}, replica {pg.replica}, {pg.note}" in text
        assert ("Features: DD dynamic instrumentation enabled" in text) == bool(s.features)


def test_service_responsibilities_come_from_the_registry() -> None:
    rows = report.service_rows()
    assert [r[0] for r in rows] == [s.name for s in SERVICES]
    handler = next(r for r in rows if r[0] == "case-event-handler")
    assert handler[1].startswith("Kafka consumer with 17 flavors")


@pytest.fixture(scope="module")
def written(graphviz: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("report")
    runner = CliRunner()
    paths = {}
    for fmt in ("md", "html"):
        result = runner.invoke(app, ["infra", "report", "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        paths[fmt] = out / f"infrastructure-report.{fmt}"
        assert paths[fmt].is_file()
    return paths


def _html_tables(path: Path) -> list[list[list[str]]]:
    """Rows of each <table>, each cell as its lines joined by a space (tags stripped)."""
    tables = []
    for table in re.findall(r"<table>(.*?)</table>", path.read_text(), flags=re.S):
        rows = []
        for tr in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
            cells = re.findall(r"<t[hd]>(.*?)</t[hd]>", tr, flags=re.S)
            rows.append(
                [
                    " ".join(
                        html.unescape(re.sub(r"<[^>]+>", "", line)).strip()
                        for line in re.split(r"</span>(?=<span class=\"line)", cell)
                    )
                    for cell in cells
                ]
            )
        tables.append(rows)
    return tables


def _md_tables(path: Path) -> list[list[list[str]]]:
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("| "):
            cells = [c.strip().replace("<br>", " ").replace("\\|", "|") for c in line.strip()[2:-2].split(" | ")]
            if not all(c == "---" for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_rendered_tables_carry_every_seed_table_fact(written: dict[str, Path]) -> None:
    expected = [
        [seed.messaging_table()[0], *seed.messaging_table()[1]],
        [seed.footprint_table()[0], *seed.footprint_table()[1]],
    ]
    assert _md_tables(written["md"]) == expected
    assert _html_tables(written["html"]) == expected


def test_reports_have_every_section_and_a_diagram_per_datacenter(written: dict[str, Path]) -> None:
    sections = [
        "Architecture Overview",
        "Network Data Flow",
        "Messaging Footprint",
        "Datacenter Footprint Summary",
        "Datacenter Topology Diagrams",
        "Per-datacenter Deployment Notes",
        "Service Responsibilities",
    ]
    md, page = written["md"].read_text(), written["html"].read_text()
    for title in sections:
        assert f"## {title}" in md
        assert f'href="#{report.anchor(title)}"' in page and f'id="{report.anchor(title)}"' in page
    diagrams = written["md"].parent / "diagrams"
    expected = {"dataflow.svg"} | {report.diagram_filename(n) for n in catalog().names}
    assert {p.name for p in diagrams.glob("*.svg")} == expected
    for svg in diagrams.glob("*.svg"):
        root = ET.parse(svg).getroot()  # well-formed SVG
        assert root.tag.endswith("svg")
    assert page.count("<svg") == len(expected)  # the HTML embeds them all
    for name in catalog().names:
        assert f"](diagrams/{report.diagram_filename(name)})" in md


def test_topology_diagrams_follow_the_catalog() -> None:
    fed = report.topology_dot(catalog().get("us1.fed.dog"))
    assert "on-call tenant\\nnot deployed" in fed and "elasticsearch-casem-oncall" not in fed
    ap2 = report.topology_dot(catalog().get("ap2.prod.dog"))
    assert "kafka-case-management-ca9c.kafka-case-management.ap2.prod.dog:9092" in ap2.replace(".\\n", ".")
    staging = report.topology_dot(catalog().get("us1.staging.dog"))
    assert "DD dynamic instrumentation enabled" in staging
    assert "DD dynamic instrumentation" not in ap2
    flow = report.dataflow_dot()
    for topic in TOPICS:
        assert f'"topic:{topic.name}"' in flow
    for svc in SERVICES:
        assert f'"svc:{svc.name}"' in flow


def test_report_is_reproducible_with_source_date_epoch(
    graphviz: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1760604896")
    first = report.write(tmp_path / "a", "md").read_text()
    second = report.write(tmp_path / "b", "md").read_text()
    assert first == second and "Generated on 2025-10-16 08:54:56 UTC" in first
