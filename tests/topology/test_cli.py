"""`casem config` and `casem infra`: output, errors and help that teaches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from casem.cli.main import app
from casem.topology.datacenters import CATALOG_PATH, catalog
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("CASEM_DATACENTER", "CASEM_CONFIG", "CASEM_PG_USER", "CASEM_PG_PASSWORD", "CASEM_KAFKA_BOOTSTRAP"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CASEM_SECRETS_DIR", str(tmp_path / "no-secrets"))
    monkeypatch.setenv("COLUMNS", "220")  # rich wraps at the terminal width


def test_config_show_json_for_ap2_masks_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEM_DATACENTER", "ap2.prod.dog")
    monkeypatch.setenv("CASEM_PG_USER", "casem")
    monkeypatch.setenv("CASEM_PG_PASSWORD", "hunter2")
    result = runner.invoke(app, ["config", "show", "--format", "json"])
    assert result.exit_code == 0, result.output
    cfg = json.loads(result.stdout)
    assert cfg["datacenter"] == "ap2.prod.dog"
    assert cfg["messaging"]["bootstrap"] == catalog().get("ap2.prod.dog").kafka.broker_url
    assert "hunter2" not in result.stdout
    assert cfg["tenants"][ON_CALL]["database"]["master_dsn"].startswith(
        "postgresql://casem:***@proxy-case-management-oncall-db."
    )
    assert len(cfg["services"]) == 27  # the seed's 25 workloads, the web console and case-connector-ingress
    shown = runner.invoke(app, ["config", "show", "--format", "json", "--show-secrets"])
    assert "hunter2" in shown.stdout


def test_config_show_text_for_a_service_in_fed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEM_DATACENTER", "us1.fed.dog")
    result = runner.invoke(app, ["config", "show", "--service", "case-event-handler", "--flavor", "paging"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Datacenter us1.fed.dog (gov)" in out
    assert f"Tenant {ON_CALL} not deployed in this datacenter" in out
    assert "domain-events (case-event-handler-paging)" in out
    assert "domain-events-oncall" not in out
    assert "set CASEM_KAFKA_BOOTSTRAP" in out


def test_config_show_defaults_to_local() -> None:
    result = runner.invoke(app, ["config", "show", "-s", "case-api"])
    assert result.exit_code == 0, result.output
    assert "Datacenter local (development)" in result.stdout
    assert f"Tenant {CASE_MANAGEMENT}" in result.stdout and "embedded log" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "show", "--datacenter", "mars.prod.dog"], "unknown datacenter 'mars.prod.dog'"),
        (["config", "show", "--service", "nope"], "unknown service 'nope'"),
        (["config", "show", "--flavor", "paging"], "--flavor needs --service"),
        (["config", "show", "-s", "case-api", "--flavor", "x"], "case-api has no flavors"),
    ],
)
def test_config_show_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_infra_datacenters_and_validate(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["infra", "datacenters", "--json"])
    assert [d["name"] for d in json.loads(listed.stdout)] == list(catalog().names)
    ok = runner.invoke(app, ["infra", "validate"])
    assert ok.exit_code == 0 and "ok: 8 datacenters" in ok.stdout
    raw = yaml.safe_load(CATALOG_PATH.read_text())
    raw["datacenters"][0]["environment"] = "qa"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    failed = runner.invoke(app, ["infra", "validate", str(bad)])
    assert failed.exit_code == 2 and "us1.staging.dog.environment" in failed.output


@pytest.mark.parametrize(
    ("args", "example"),
    [
        (["config", "--help"], "CASEM_DATACENTER=ap2.prod.dog casem config show"),
        (["config", "show", "--help"], "CASEM_PG_USER"),
        (["infra", "--help"], "casem infra helm-values --all --out"),
        (["infra", "helm-values", "--help"], "helm upgrade --install"),
        (["infra", "report", "--help"], "casem infra report --out report-out"),
    ],
)
def test_help_teaches_with_examples(args: list[str], example: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert example in " ".join(result.stdout.split())
