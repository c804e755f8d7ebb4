"""The HTML report as a person reads it, checked in headless Chromium at 1,400 px: no table wider than the
page, hostnames that break only at their dots, edge labels large enough to read, every datacenter diagram
at the same scale, and the intake edge from the API clients to the case-intake service (not its topic).

Set CASEM_REPORT_SCREENSHOTS=DIR to keep screenshots of the page and its sections for a look."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from casem.cli.main import app
from casem.infra import report
from casem.topology.datacenters import catalog

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH = 1400


@pytest.fixture(scope="module")
def page_path(graphviz: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(app, ["infra", "report", "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "infrastructure-report.html"


@pytest.fixture(scope="module")
def page(chromium: Path, page_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": WIDTH, "height": 900})
            tab.goto(page_path.as_uri())
            tab.wait_for_load_state("load")
            shots = os.environ.get("CASEM_REPORT_SCREENSHOTS")
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=f"{shots}/report-{WIDTH}px.png", full_page=True)
                for section in ("network-data-flow", "messaging-footprint", "datacenter-footprint-summary"):
                    tab.locator(f"#{section}").screenshot(path=f"{shots}/{section}.png")
                for i, dc in enumerate(catalog().names):
                    tab.locator("#datacenter-topology-diagrams figure").nth(i).screenshot(
                        path=f"{shots}/topology-{dc}.png"
                    )
            yield tab
        finally:
            browser.close()


def test_no_table_is_wider_than_the_page(page: Any) -> None:
    widths = page.evaluate(
        """() => ({
          page: [document.documentElement.scrollWidth, document.documentElement.clientWidth],
          tables: [...document.querySelectorAll('table')].map(t => [t.scrollWidth, t.parentElement.clientWidth]),
        })"""
    )
    assert widths["page"][0] <= widths["page"][1] == WIDTH, widths
    assert len(widths["tables"]) == 2
    for table, room in widths["tables"]:
        assert table <= room, widths


def test_hostnames_break_only_at_their_dots(page: Any) -> None:
    # A hostname is a run of unbreakable segments, one per label and its dot: each segment on one line.
    split = page.evaluate(
        """() => [...document.querySelectorAll('td code .seg')]
              .filter(s => s.getClientRects().length !== 1).map(s => s.textContent)"""
    )
    segments = page.evaluate("() => document.querySelectorAll('td code .seg').length")
    assert segments > 200 and split == []
    # ... and the long ones do wrap (between segments), which is what lets the table fit.
    wrapped = page.evaluate(
        """() => [...document.querySelectorAll('td code')].filter(c => c.getClientRects().length > 1).length"""
    )
    assert wrapped > 0


def test_edge_labels_are_readable(page: Any) -> None:
    heights = page.evaluate(
        """() => [...document.querySelectorAll('#network-data-flow svg g.edge text')]
              .map(t => t.getBoundingClientRect().height)"""
    )
    assert len(heights) >= 15
    assert min(heights) >= 11, heights  # the labels were about 6 px before


def test_every_datacenter_diagram_is_drawn_at_the_same_scale(page: Any) -> None:
    scales = page.evaluate(
        """() => [...document.querySelectorAll('#datacenter-topology-diagrams figure svg')]
              .map(s => s.getBoundingClientRect().width / s.viewBox.baseVal.width)"""
    )
    assert len(scales) == len(catalog().names)
    assert max(scales) - min(scales) < 0.005, scales
    node_text = page.evaluate(
        """() => Math.min(...[...document.querySelectorAll('#datacenter-topology-diagrams svg g.node text')]
              .map(t => t.getBoundingClientRect().height))"""
    )
    assert node_text >= 11


def _edges(svg: str) -> set[tuple[str, str]]:
    titles = re.findall(r'<g id="edge\d+" class="edge">\s*<title>(.*?)</title>', svg)
    return {tuple(t.replace("&#45;", "-").replace("&gt;", ">").split("->")) for t in titles}  # type: ignore[misc]


def test_the_intake_edge_points_at_the_service(page_path: Path) -> None:
    svg = (page_path.parent / "diagrams" / "dataflow.svg").read_text()
    edges = _edges(svg)
    assert ("ext:clients", "svc:case-intake") in edges
    assert ("ext:clients", "topic:case-intake") not in edges
    assert ("svc:case-intake", "topic:case-intake") in edges  # the service publishes to its topic
    assert ("topic:case-intake", "svc:case-indexer") in edges


def test_every_workload_is_built_so_none_is_marked(page: Any) -> None:
    """Every service and flavor of the seed runs in this build: no card, flow edge or note says otherwise."""
    cards = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.service')]
              .map(c => [c.querySelector('h3').textContent, c.querySelector('.kind').textContent]))"""
    )
    assert {"case-chat-interactions", "case-third-party-reader", "case-event-handler", "case-api"} <= set(cards)
    assert [name for name, kind in cards.items() if "not built yet" in kind] == []
    flow = page.evaluate("() => document.querySelector('#network-data-flow svg').textContent")
    assert "not built yet" not in flow
    notes = page.evaluate("() => document.querySelector('#per-datacenter-deployment-notes').textContent")
    assert "not built yet" not in notes and "Temporal: address not in the catalog" in notes


def test_diagrams_share_one_scale_in_the_generated_markup(graphviz: None) -> None:
    def scale(svg: str) -> float:
        match = re.search(r'<svg width="([\d.]+)px" height="[\d.]+px"\s+viewBox="[-\d.]+ [-\d.]+ ([\d.]+)', svg)
        assert match is not None, svg[:300]
        return float(match.group(1)) / float(match.group(2))

    scales = [scale(section.diagram) for section in report.build().datacenters]
    assert max(scales) - min(scales) < 0.01, scales
