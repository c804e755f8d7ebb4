"""The remembered key pairs of `authenticate_cached`: a key revoked or a user disabled in this process stops
working on the next request (forgotten when the change commits, not before and not on a rollback); a change
made elsewhere (another replica, a direct write) is seen once the pair's entry is older than the TTL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from casem.adapters.storage.tables import credentials, users
from casem.app import auth
from casem.app.auth import AuthenticationFailed, Principal, PrincipalCache, authenticate_cached
from casem.app.console import keys as console_keys
from casem.app.context import AppContext
from casem.app.identity import keys
from casem.app.identity.service import BootstrapCredentials, bootstrap_org, disable_user
from casem.domain.identity import hash_key


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> PrincipalCache:
    cache = PrincipalCache(ttl_s=60.0)  # long: only a forget or an explicit clock ends an entry here
    monkeypatch.setattr(auth, "PRINCIPALS", cache)
    return cache


async def _org(context: AppContext) -> BootstrapCredentials:
    async with context.uow() as uow:
        creds = await bootstrap_org(uow, "cache", "cache@example.com")
        await uow.commit()
    return creds


async def _key_id(context: AppContext, secret: str) -> str:
    async with context.uow(read_only=True) as uow:
        return str(await uow.scalar(sa.select(credentials.c.id).where(credentials.c.key_hash == hash_key(secret))))


async def _login(context: AppContext, creds: BootstrapCredentials) -> Principal:
    return await authenticate_cached(lambda: context.uow(read_only=True), creds.api_key, creds.app_key)


async def test_a_key_revoked_through_the_api_use_case_stops_at_once(context: AppContext) -> None:
    creds = await _org(context)
    assert (await _login(context, creds)).user_id == creds.user_id
    assert len(auth.PRINCIPALS.entries) == 1
    app_key_id = await _key_id(context, creds.app_key)
    async with context.uow() as uow:
        await keys.revoke_key(uow, creds.org_id, app_key_id, actor_id=creds.user_id)
        assert len(auth.PRINCIPALS.entries) == 1  # not yet committed: still valid for everyone else
        await uow.commit()
    with pytest.raises(AuthenticationFailed):
        await _login(context, creds)


async def test_a_key_revoked_from_the_console_stops_at_once(context: AppContext) -> None:
    creds = await _org(context)
    await _login(context, creds)
    async with context.uow() as uow:
        await console_keys.revoke_key(uow, creds.org_id, await _key_id(context, creds.api_key))
        await uow.commit()
    with pytest.raises(AuthenticationFailed):
        await _login(context, creds)


async def test_a_disabled_user_is_refused_at_once(context: AppContext) -> None:
    creds = await _org(context)
    await _login(context, creds)
    async with context.uow() as uow:
        await disable_user(uow, creds.org_id, creds.user_id, creds.user_id)
        await uow.commit()
    with pytest.raises(AuthenticationFailed):
        await _login(context, creds)


async def test_a_revocation_rolled_back_forgets_nothing(context: AppContext) -> None:
    creds = await _org(context)
    await _login(context, creds)
    generation = auth.PRINCIPALS.generation
    async with context.uow() as uow:
        await keys.revoke_key(uow, creds.org_id, await _key_id(context, creds.app_key), actor_id=None)
    assert auth.PRINCIPALS.generation == generation and len(auth.PRINCIPALS.entries) == 1
    assert (await _login(context, creds)).org_id == creds.org_id


async def test_a_change_made_elsewhere_is_seen_once_the_entry_is_older_than_the_ttl(context: AppContext) -> None:
    """Another process (a replica, `casem admin`) cannot reach this cache: the TTL bounds how long it lags."""
    creds = await _org(context)
    await _login(context, creds)
    async with context.uow() as uow:  # written straight to the table: no use case, no forgetting
        await uow.execute(sa.update(users).where(users.c.id == creds.user_id).values(disabled=True))
        await uow.commit()
    assert (await _login(context, creds)).user_id == creds.user_id  # remembered, within the TTL
    pair = next(iter(auth.PRINCIPALS.entries))
    principal, at = auth.PRINCIPALS.entries[pair]
    auth.PRINCIPALS.entries[pair] = (principal, at - auth.PRINCIPALS.ttl_s)  # the entry is now TTL old
    with pytest.raises(AuthenticationFailed):
        await _login(context, creds)


async def test_failures_are_not_remembered(context: AppContext) -> None:
    creds = await _org(context)
    with pytest.raises(AuthenticationFailed):
        await authenticate_cached(lambda: context.uow(read_only=True), creds.api_key, "not-a-key")
    assert auth.PRINCIPALS.entries == {}


def test_an_entry_expires_at_its_ttl() -> None:
    cache = PrincipalCache(ttl_s=5.0)
    who = Principal("org", "user")
    cache.put(("a", "b"), who, cache.generation, now=100.0)
    assert cache.get(("a", "b"), now=104.9) == who
    assert cache.get(("a", "b"), now=105.0) is None
    assert cache.entries == {}


def test_a_lookup_that_began_before_a_forget_does_not_store_its_answer() -> None:
    cache = PrincipalCache(ttl_s=5.0)
    began = cache.generation
    cache.forget_all()  # a revocation committed while the lookup was reading the old rows
    cache.put(("a", "b"), Principal("org", "user"), began, now=1.0)
    assert cache.get(("a", "b"), now=1.0) is None


def test_a_zero_ttl_turns_the_cache_off() -> None:
    cache = PrincipalCache(ttl_s=0.0)
    cache.put(("a", "b"), Principal("org", "user"), cache.generation, now=1.0)
    assert cache.entries == {}
    assert auth.cache_seconds({"CASEM_AUTH_CACHE_SECONDS": "0"}) == 0.0
    assert auth.cache_seconds({}) == auth.DEFAULT_CACHE_SECONDS
