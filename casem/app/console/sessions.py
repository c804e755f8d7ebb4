"""Server-side console sessions.

A session is a random 256-bit token in an HttpOnly cookie; the database keeps only its SHA-256, with the
account, the org and the user it acts as, and a CSRF token. Signing in always starts a new session (a token
planted in the browser before sign-in is never promoted: no session fixation); signing out deletes the row,
so the old cookie opens nothing even if it was copied. Sessions end after `IDLE` without use or `ABSOLUTE`
after sign-in, whichever comes first; changing a password ends every other session of the account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from casem.adapters.storage.tables import console_sessions, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.console.accounts import Account
from casem.domain.events import utcnow

IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
# last_seen_at is written at most this often: a page view is not a database write each time.
TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class ConsoleSession:
    token_hash: str
    account_id: str
    org_id: str
    user_id: str
    csrf_token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(uow: UnitOfWork, account: Account, user_agent: str | None) -> tuple[str, ConsoleSession]:
    """A new session for the account: (the cookie's token, the session). The token is not stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = ConsoleSession(token_hash(token), account.id, account.org_id, account.user_id, secrets.token_urlsafe(32))
    await uow.execute(
        sa.insert(console_sessions).values(
            token_hash=session.token_hash,
            account_id=account.id,
            org_id=account.org_id,
            user_id=account.user_id,
            csrf_token=session.csrf_token,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    return token, session


async def load_session(uow: UnitOfWork, token: str | None) -> ConsoleSession | None:
    """The live session of a cookie's token, or None (unknown, expired, idle too long, user disabled)."""
    if not token or len(token) > 128:
        return None
    now = utcnow()
    row = (
        await uow.execute(
            sa.select(console_sessions, users.c.disabled)
            .join(users, users.c.id == console_sessions.c.user_id)
            .where(console_sessions.c.token_hash == token_hash(token))
        )
    ).one_or_none()
    if row is None or row.disabled or row.expires_at <= now or row.last_seen_at + IDLE <= now:
        return None
    if not uow.read_only and row.last_seen_at + TOUCH_EVERY <= now:
        await uow.execute(
            sa.update(console_sessions).where(console_sessions.c.token_hash == row.token_hash).values(last_seen_at=now)
        )
    return ConsoleSession(row.token_hash, row.account_id, row.org_id, row.user_id, row.csrf_token)


async def end_session(uow: UnitOfWork, token_hash_value: str) -> None:
    await uow.execute(sa.delete(console_sessions).where(console_sessions.c.token_hash == token_hash_value))


async def end_other_sessions(uow: UnitOfWork, account_id: str, keep: str | None) -> int:
    """End every session of the account but `keep` (after a password change); returns how many ended."""
    condition = console_sessions.c.account_id == account_id
    if keep is not None:
        condition = sa.and_(condition, console_sessions.c.token_hash != keep)
    result = await uow.execute(sa.delete(console_sessions).where(condition))
    return int(result.rowcount or 0)


async def purge_expired(uow: UnitOfWork) -> int:
    now = utcnow()
    result = await uow.execute(
        sa.delete(console_sessions).where(
            sa.or_(console_sessions.c.expires_at <= now, console_sessions.c.last_seen_at <= now - IDLE)
        )
    )
    return int(result.rowcount or 0)
