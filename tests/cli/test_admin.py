"""`casem admin`: list users, list keys (never their secrets), create and revoke keys, on a fresh data dir.

Regressions: `create-key` once issued a key in org B for a user of org A, and a user id that does not exist
ended in a traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from casem.adapters.storage.tables import credentials
from casem.app.auth import AuthenticationFailed, authenticate
from casem.app.context import AppContext
from casem.cli.admin import app
from casem.domain.identity import hash_key

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CASEM_DATA_DIR", str(tmp_path))
    for name in ("CASEM_DATACENTER", "CASEM_SEARCH_URL", "CASEM_CASE_SEARCH", "CASEM_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def admin(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output.strip()


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


def stored_key_count() -> int:
    async def count() -> int:
        ctx = AppContext.open()
        try:
            async with ctx.uow(read_only=True) as uow:
                return int(await uow.scalar(sa.select(sa.func.count()).select_from(credentials)))
        finally:
            await ctx.close()

    return asyncio.run(count())


def opens(api_key: str, app_key: str) -> bool:
    async def check() -> bool:
        ctx = AppContext.open()
        try:
            async with ctx.uow(read_only=True) as uow:
                await authenticate(uow, api_key, app_key)
                return True
        except AuthenticationFailed:
            return False
        finally:
            await ctx.close()

    return asyncio.run(check())


def test_keys_of_one_org_for_a_user_of_another_are_refused(data_dir: Path) -> None:
    org_a, org_b = admin("create-org", "Acme"), admin("create-org", "Beta")
    alice = admin("create-user", org_a, "alice@acme.test")
    before = stored_key_count()
    output = refused("create-key", org_b, "--kind", "application", "--user", alice)
    assert "belongs to another org" in output and org_b in output
    output = refused("create-key", org_b, "--kind", "application", "--user", "00000000-0000-4000-8000-000000000000")
    assert "user 00000000-0000-4000-8000-000000000000 not found" in output
    assert "not found" in refused("create-key", org_b, "--kind", "application", "--user", "not-a-uuid")
    assert "belongs to the org" in refused("create-key", org_a, "--kind", "api", "--user", alice)
    assert stored_key_count() == before  # nothing half-made
    # The same user in their own org gets a key.
    assert re.fullmatch(r"[0-9a-f]{40}", admin("create-key", org_a, "--kind", "application", "--user", alice))


def test_list_users_list_keys_and_revoke(data_dir: Path) -> None:
    org = admin("create-org", "Acme")
    alice = admin("create-user", org, "alice@acme.test", "--name", "Alice")
    bob = admin("create-user", org, "bob@acme.test")
    api_secret = admin("create-key", org, "--name", "ingest")
    app_secret = admin("create-key", org, "--kind", "application", "--user", alice, "--name", "alice-cli")

    users = json.loads(admin("list-users", org, "--format", "json"))
    assert [(u["id"], u["email"], u["status"]) for u in users] == [
        (alice, "alice@acme.test", "active"),
        (bob, "bob@acme.test", "active"),
    ]
    assert "alice@acme.test" in admin("list-users", org)

    listed = json.loads(admin("list-keys", org, "--format", "json"))
    assert sorted((k["kind"], k["name"], k["last4"]) for k in listed) == [
        ("api", "ingest", api_secret[-4:]),
        ("application", "alice-cli", app_secret[-4:]),
    ]
    table = admin("list-keys", org)
    for secret in (api_secret, app_secret):
        assert secret not in table and hash_key(secret) not in table
        assert secret not in json.dumps(listed) and hash_key(secret) not in json.dumps(listed)
    assert [k["owner"] for k in json.loads(admin("list-keys", org, "--user", alice, "--format", "json"))] == [alice]
    assert json.loads(admin("list-keys", org, "--user", bob, "--format", "json")) == []

    assert opens(api_secret, app_secret)
    app_key_id = next(k["id"] for k in listed if k["kind"] == "application")
    assert "revoked application key" in admin("revoke-key", org, app_key_id)
    assert not opens(api_secret, app_secret)
    assert [k["kind"] for k in json.loads(admin("list-keys", org, "--format", "json"))] == ["api"]
    # Twice, or in another org: the key is not there.
    assert "not found" in refused("revoke-key", org, app_key_id)
    other = admin("create-org", "Other")
    api_key_id = next(k["id"] for k in listed if k["kind"] == "api")
    assert "not found" in refused("revoke-key", other, api_key_id)
    assert "not found" in refused("list-keys", "no-such-org")


def test_personal_access_tokens_create_list_and_revoke(data_dir: Path) -> None:
    org = admin("create-org", "Acme")
    alice = admin("create-user", org, "alice@acme.test")
    api_secret = admin("create-key", org)
    token = admin("create-token", org, "--user", alice, "--name", "deploy", "--days", "7")
    assert re.fullmatch(r"casempat_[0-9a-f]{16}_\S+", token)
    assert opens(api_secret, token)  # a token acts as its user where an application key goes

    listed = json.loads(admin("list-tokens", org, "--format", "json"))
    assert [(t["name"], t["owner"], t["public_portion"]) for t in listed] == [("deploy", alice, token[:25])]
    assert token not in json.dumps(listed) and hash_key(token) not in admin("list-tokens", org)
    assert json.loads(admin("list-tokens", org, "--user", org, "--format", "json")) == []

    assert "revoked personal access token" in admin("revoke-token", org, listed[0]["id"])
    assert not opens(api_secret, token)
    assert "not found" in refused("revoke-token", org, listed[0]["id"])
    # A user of another org, or an expiry under Datadog's minimum, is refused before anything is stored.
    other = admin("create-org", "Other")
    assert "belongs to another org" in refused("create-token", other, "--user", alice)
    assert "at least 24 hours" in refused("create-token", org, "--user", alice, "--days", "1")
