"""`casem admin allow-outbound / disallow-outbound / list-outbound`: the per-org outbound allow-list is an
operator's tool (there is no tenant API for it), stored canonical, and read by the save-time check."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casem.app.context import AppContext
from casem.app.outbound.service import OutboundSettings, org_allow_list, parse_network
from casem.cli.main import app
from casem.domain.errors import InvalidInput


def casem(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CASEM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CASEM_OUTBOUND_ALLOW", raising=False)
    return tmp_path


async def _allow_list(org_id: str) -> list[str]:
    ctx = AppContext.open()
    try:
        async with ctx.uow(read_only=True) as uow:
            return [str(n) for n in (await org_allow_list(uow, org_id)).networks]
    finally:
        await ctx.close()


def test_operators_allow_list_and_remove_an_orgs_networks(data_dir: Path) -> None:
    org = casem("admin", "create-org", "Acme").strip()
    other = casem("admin", "create-org", "Other").strip()
    assert "allowed 10.20.0.0/16" in casem("admin", "allow-outbound", org, "10.20.0.0/16", "--note", "jira")
    assert "allowed 192.168.5.7/32" in casem("admin", "allow-outbound", org, "192.168.5.7")
    casem("admin", "allow-outbound", org, "10.20.0.0/16")  # again: no duplicate
    listed = casem("admin", "list-outbound", org, "--format", "json")
    assert "10.20.0.0/16" in listed and "192.168.5.7/32" in listed and "jira" in listed
    assert asyncio.run(_allow_list(org)) == ["10.20.0.0/16", "192.168.5.7/32"]
    assert asyncio.run(_allow_list(other)) == []
    assert "removed 192.168.5.7/32" in casem("admin", "disallow-outbound", org, "192.168.5.7/32")
    assert asyncio.run(_allow_list(org)) == ["10.20.0.0/16"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("allow-outbound", "ORG", "10.0.0.5/8"), "not a valid CIDR network"),
        (("allow-outbound", "ORG", "jira.corp"), "host names are not accepted"),
        (("allow-outbound", "ORG", "0.0.0.0/0"), "allows every address"),
        (("allow-outbound", "no-such-org", "10.0.0.0/8"), "org no-such-org not found"),
        (("disallow-outbound", "ORG", "10.9.0.0/16"), "not found"),
    ],
)
def test_bad_entries_and_unknown_orgs_are_clear_errors(data_dir: Path, args: tuple[str, ...], message: str) -> None:
    org = casem("admin", "create-org", "Acme").strip()
    argv = ["admin", *(org if a == "ORG" else a for a in args)]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_networks_are_stored_canonical() -> None:
    assert parse_network(" fd00:1:0::/64 ") == "fd00:1::/64"
    with pytest.raises(InvalidInput):
        parse_network("::/0")


def test_a_malformed_operator_allow_list_stops_the_start() -> None:
    with pytest.raises(ValueError, match="CASEM_OUTBOUND_ALLOW: '10.0.0.5/8'"):
        OutboundSettings.from_env({"CASEM_OUTBOUND_ALLOW": "10.0.0.5/8"})
    settings = OutboundSettings.from_env({"CASEM_OUTBOUND_ALLOW": "10.20.0.0/16"})
    assert settings.policy().allow.networks == settings.operator_allow.networks
