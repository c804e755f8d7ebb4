"""Parse the seed infrastructure report (shared/seed/*.txt) into plain facts for the tests.

Where the seed is: `CASEM_SEED_REPORT` (a file, or a folder of *.txt), else `shared/seed/` beside the
repository (CI lays a copy of shared/ beside its clone). A person's fresh clone has neither: there the
comparison is skipped with a message saying how to run it. Under CI (`CI` set) a missing seed fails.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED_DIR = REPO.parent / "shared" / "seed"
MARKER = "Datacenter Footprint Summary"


def _candidates() -> list[Path]:
    configured = os.environ.get("CASEM_SEED_REPORT")
    where = Path(configured) if configured else SEED_DIR
    if where.is_file():
        return [where]
    return sorted(where.glob("*.txt")) if where.is_dir() else []


def seed_text() -> str:
    for path in _candidates():
        text = path.read_text(encoding="utf-8")
        if MARKER in text:
            return text
    where = os.environ.get("CASEM_SEED_REPORT") or f"{SEED_DIR}/*.txt"
    message = f"seed report not found: no {where} containing {MARKER!r}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(f"{message}; set CASEM_SEED_REPORT to the seed report to compare the topology against it")


def _table(text: str, header_start: str, columns: int) -> tuple[list[str], list[list[str]]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start) and "\t" in line)
    header = [c.strip() for c in lines[start].split("\t")]
    assert len(header) == columns, header
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            if rows:
                break
            continue
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) != columns:
            break
        rows.append(cells)
    return header, rows


@dataclass
class SeedPostgres:
    master: str
    replica: str
    note: str


@dataclass
class SeedDatacenter:
    name: str
    environment: str
    clusters: list[str]
    producer: str
    consumer: str | None = None
    broker_url: str | None = None
    postgres: dict[str, SeedPostgres | None] = field(default_factory=dict)  # "Case"/"On-call"
    search: dict[str, str | None] = field(default_factory=dict)  # "case"/"on-call"
    features: list[str] = field(default_factory=list)
    notes_postgres: dict[str, SeedPostgres | None] = field(default_factory=dict)
    notes_clusters: list[str] = field(default_factory=list)
    notes_environment: str | None = None
    notes_producer: str | None = None


_PG = re.compile(r"^master:? (\S+?),? replica:? (\S+?),? (.+)$")


def _postgres(cell: str) -> SeedPostgres | None:
    if cell.lower().startswith("not deployed") or "tenant not deployed" in cell:
        return None
    m = _PG.match(cell)
    assert m, f"unparsed Postgres cell: {cell!r}"
    return SeedPostgres(m.group(1), m.group(2), m.group(3).strip())


def messaging_table(text: str | None = None) -> tuple[list[str], list[list[str]]]:
    return _table(text or seed_text(), "Topic\t", 4)


def footprint_table(text: str | None = None) -> tuple[list[str], list[list[str]]]:
    return _table(text or seed_text(), "Datacenter\t", 7)


def datacenters() -> dict[str, SeedDatacenter]:
    text = seed_text()
    header, rows = footprint_table(text)
    result: dict[str, SeedDatacenter] = {}
    for name, env, clusters, kafka, case_pg, oncall_pg, search in rows:
        m = re.match(r"^(\d+) clusters (.+)$", clusters)
        assert m, clusters
        names = m.group(2).split()
        assert len(names) == int(m.group(1))
        k = re.match(r"^producer: (\S+)(?: url: (\S+))?$", kafka)
        assert k, kafka
        s = re.match(r"^case: (\S+) on-call: (.+)$", search)
        assert s, search
        result[name] = SeedDatacenter(
            name=name,
            environment=env,
            clusters=names,
            producer=k.group(1),
            broker_url=k.group(2),
            postgres={"Case": _postgres(case_pg), "On-call": _postgres(oncall_pg)},
            search={"case": s.group(1), "on-call": None if s.group(2) == "not deployed" else s.group(2)},
        )
    _parse_notes(text, result)
    return result


def _parse_notes(text: str, dcs: dict[str, SeedDatacenter]) -> None:
    section = text.split("Per-datacenter Deployment Notes", 1)[1].split("Service Responsibilities", 1)[0]
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for raw in section.splitlines():
        line = raw.strip()
        if line in dcs:
            current = line
            blocks[current] = []
        elif current and line:
            blocks[current].append(line)
    assert set(blocks) == set(dcs), f"notes for {sorted(blocks)} vs table {sorted(dcs)}"
    for name, lines in blocks.items():
        dc = dcs[name]
        items: list[str] = []
        for line in lines:
            if line.startswith("Environment:"):
                dc.notes_environment = line.split(":", 1)[1].strip()
            elif line.startswith("- "):
                items.append(line[2:])
            else:  # a wrapped continuation of the previous item
                items[-1] += " " + line
        for item in items:
            key, _, value = item.partition(":")
            value = re.sub(r"\s+,", ",", value.replace("`", "")).strip()
            value = re.sub(r"\s+", " ", value)
            if key == "Kubernetes clusters":
                dc.notes_clusters = [c.strip() for c in value.split(",")]
            elif key == "Kafka":
                k = re.match(
                    r"^producer cluster (\S+), consumer cluster (\S+)(?:, brokers reachable at (\S+))?$", value
                )
                assert k, value
                dc.notes_producer, dc.consumer = k.group(1), k.group(2)
                if k.group(3):
                    assert dc.broker_url in (None, k.group(3))
                    dc.broker_url = k.group(3)
            elif key in ("Case Postgres", "On-call Postgres"):
                dc.notes_postgres[key.split()[0]] = _postgres(value)
            elif key == "Features":
                dc.features = [f.strip() for f in value.split(",")]
            else:
                raise AssertionError(f"{name}: unknown note {item!r}")
