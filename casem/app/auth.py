"""Authentication: DD-API-KEY (the org) + DD-APPLICATION-KEY (the user acting), as Datadog does.

DD-APPLICATION-KEY takes an application key or a personal access token of the same org; a token stops working
when it expires, cached or not, and records when it was last used (at most once a minute per token).

`authenticate_cached` remembers, for CASEM_AUTH_CACHE_SECONDS (default 5; 0 turns it off), who a pair of
keys authenticated as, so a busy caller's requests do not each open a transaction to look their keys up.
A key revoked or a user disabled in this process is forgotten as soon as the change commits
(`forget_principals`, registered with `UnitOfWork.after_commit`); in another process (another replica, the
console, `casem admin revoke-key`) it stops working here within CASEM_AUTH_CACHE_SECONDS.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from casem.adapters.storage.tables import credentials, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.events import utcnow
from casem.domain.identity import API_KEY, APP_KEY, PAT, hash_key

USER_KEY_KINDS = (APP_KEY, PAT)  # what DD-APPLICATION-KEY may hold
LAST_USED_RESOLUTION = timedelta(minutes=1)  # a token's last_used_at is written at most this often


@dataclass(frozen=True)
class Principal:
    org_id: str
    user_id: str
    # A personal access token's id and expiry, when one authenticated (not part of who the principal is).
    token_id: str | None = field(default=None, compare=False)
    expires_at: datetime | None = field(default=None, compare=False)
    last_used_at: datetime | None = field(default=None, compare=False)

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class AuthenticationFailed(Exception):
    pass


async def authenticate(uow: UnitOfWork, api_key: str | None, app_key: str | None) -> Principal:
    """Both keys must be valid, unrevoked, of the same org and each in its own header (an application
    key sent as DD-API-KEY, or an API key as DD-APPLICATION-KEY, is refused); the app key's user must be
    enabled. A personal access token in DD-APPLICATION-KEY counts as an application key until it expires."""
    if not api_key or not app_key:
        raise AuthenticationFailed("missing DD-API-KEY or DD-APPLICATION-KEY")
    rows = (
        await uow.execute(
            sa.select(
                credentials.c.id,
                credentials.c.kind,
                credentials.c.key_hash,
                credentials.c.org_id,
                credentials.c.user_id,
                credentials.c.expires_at,
                credentials.c.last_used_at,
            ).where(
                credentials.c.key_hash.in_([hash_key(api_key), hash_key(app_key)]),
                credentials.c.revoked_at.is_(None),
            )
        )
    ).all()
    by_hash = {row.key_hash: row for row in rows}
    api, app = by_hash.get(hash_key(api_key)), by_hash.get(hash_key(app_key))
    if api is None or app is None or api.kind != API_KEY or app.kind not in USER_KEY_KINDS:
        raise AuthenticationFailed("invalid keys")
    if api.org_id != app.org_id or app.user_id is None:
        raise AuthenticationFailed("invalid keys")
    if app.kind == PAT and (app.expires_at is None or app.expires_at <= utcnow()):
        raise AuthenticationFailed("personal access token expired")
    disabled = await uow.scalar(
        sa.select(users.c.disabled).where(users.c.id == app.user_id, users.c.org_id == app.org_id)
    )
    if disabled is None or disabled:
        raise AuthenticationFailed("user disabled")
    if app.kind == PAT:
        return Principal(api.org_id, app.user_id, app.id, app.expires_at, app.last_used_at)
    return Principal(org_id=api.org_id, user_id=app.user_id)


async def record_token_use(uow: UnitOfWork, principal: Principal) -> bool:
    """Stamp the personal access token that authenticated `principal` as used now, unless it was within
    LAST_USED_RESOLUTION (a busy client must not turn every request into a write). True when stamped."""
    if principal.token_id is None:
        return False
    now = utcnow()
    if principal.last_used_at is not None and now - principal.last_used_at < LAST_USED_RESOLUTION:
        return False
    await uow.execute(
        sa.update(credentials)
        .where(
            credentials.c.id == principal.token_id,
            sa.or_(credentials.c.last_used_at.is_(None), credentials.c.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
    await uow.commit()
    return True


DEFAULT_CACHE_SECONDS = 5.0
MAX_CACHED_PAIRS = 10_000  # key pairs remembered at once; the oldest are forgotten first


def cache_seconds(env: dict[str, str] | None = None) -> float:
    value = (os.environ if env is None else env).get("CASEM_AUTH_CACHE_SECONDS")
    return float(value) if value else DEFAULT_CACHE_SECONDS


@dataclass
class PrincipalCache:
    """Key-pair hashes -> (principal, when it was looked up). `generation` changes whenever what is cached may
    have become wrong: a lookup that began before the change does not store its (possibly stale) answer."""

    ttl_s: float = field(default_factory=cache_seconds)
    entries: dict[tuple[str, str], tuple[Principal, float]] = field(default_factory=dict)
    generation: int = 0

    def get(self, pair: tuple[str, str], now: float) -> Principal | None:
        found = self.entries.get(pair)
        if found is None:
            return None
        principal, at = found
        if now - at >= self.ttl_s or principal.expired(utcnow()):
            self.entries.pop(pair, None)
            return None
        return principal

    def put(self, pair: tuple[str, str], principal: Principal, generation: int, now: float) -> None:
        if self.ttl_s <= 0 or generation != self.generation:
            return
        self.entries.pop(pair, None)
        self.entries[pair] = (principal, now)
        while len(self.entries) > MAX_CACHED_PAIRS:
            self.entries.pop(next(iter(self.entries)))

    def forget_all(self) -> None:
        self.generation += 1
        self.entries.clear()


PRINCIPALS = PrincipalCache()


def forget_principals() -> None:
    """Every remembered key pair is looked up again on its next use (after a revocation or a disabled user:
    rare, so forgetting all of them is simpler than finding the pairs a change touches)."""
    PRINCIPALS.forget_all()


async def authenticate_cached(
    open_uow: Callable[[], UnitOfWork],
    api_key: str | None,
    app_key: str | None,
    open_write_uow: Callable[[], UnitOfWork] | None = None,
) -> Principal:
    """`authenticate`, answered from `PRINCIPALS` while the pair's last successful lookup is fresh (and a
    token's expiry not passed). Failures are not remembered: a key created a moment ago works at once. With
    `open_write_uow`, a personal access token's last use is recorded on the lookups that miss the cache."""
    if not api_key or not app_key:
        raise AuthenticationFailed("missing DD-API-KEY or DD-APPLICATION-KEY")
    pair = (hash_key(api_key), hash_key(app_key))
    cached = PRINCIPALS.get(pair, time.monotonic())
    if cached is not None:
        return cached
    generation = PRINCIPALS.generation
    async with open_uow() as uow:
        principal = await authenticate(uow, api_key, app_key)
    if open_write_uow is not None and principal.token_id is not None:
        async with open_write_uow() as uow:
            await record_token_use(uow, principal)
    PRINCIPALS.put(pair, principal, generation, time.monotonic())
    return principal


@dataclass(frozen=True)
class OrgKey:
    """An org identified by its API key alone (Datadog's validate endpoints): no user acts."""

    org_id: str
    key_id: str


async def authenticate_api_key(uow: UnitOfWork, api_key: str | None) -> OrgKey:
    """A live API key in DD-API-KEY: an application key there is refused, as in `authenticate`."""
    if not api_key:
        raise AuthenticationFailed("missing DD-API-KEY")
    row = (
        await uow.execute(
            sa.select(credentials.c.id, credentials.c.kind, credentials.c.org_id).where(
                credentials.c.key_hash == hash_key(api_key), credentials.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None or row.kind != API_KEY:
        raise AuthenticationFailed("invalid key")
    return OrgKey(org_id=row.org_id, key_id=row.id)
