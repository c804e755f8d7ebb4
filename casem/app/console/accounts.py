"""Console accounts: a person's sign-in (e-mail + Argon2id password, or an OIDC subject) for one user.

The sign-in form asks for an e-mail address, not an org, so an account's e-mail is unique across every
org of this casem. A user gets an account when someone sets a password for them (`casem admin
set-password`, the console's users page, the first run of `casem up`) or when their identity provider
vouches for their e-mail (OIDC).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from casem.adapters.storage.tables import console_accounts, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.identity.service import get_user
from casem.domain.errors import Conflict, NotFound
from casem.domain.events import utcnow
from casem.domain.passwords import validate_password

# argon2-cffi's defaults follow RFC 9106's second recommended option (Argon2id, 64 MiB, 3 passes).
_hasher = PasswordHasher()
# Verified against when the e-mail has no account, so "no such account" takes as long as "wrong password".
_DECOY_HASH = _hasher.hash("decoy password that matches nothing")


# After FREE_FAILURES wrong passwords in a row an account waits before its next try: a minute, doubling with each
# further failure up to a quarter of an hour. Guessing a password then takes years; its owner, who mistyped, is
# back in a minute. A right password (or a new one set for it) clears the count.
FREE_FAILURES = 5
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(minutes=15)


class SignInFailed(Exception):
    """Wrong e-mail or password, or a disabled user: the caller says the same thing for each. `account_id` is the
    account the e-mail names, if any, for the caller to count the failure against (after its rollback)."""

    def __init__(self, account_id: str | None = None) -> None:
        super().__init__("sign-in failed")
        self.account_id = account_id


class SignInBlocked(Exception):
    """Too many failed sign-ins in a row for this account: it may try again after `retry_after`."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after}")
        self.retry_after = retry_after


def wait_after(failures: int) -> timedelta | None:
    """How long an account waits after this many failed sign-ins in a row (None: it may try at once)."""
    if failures < FREE_FAILURES:
        return None
    return min(LONGEST_WAIT, FIRST_WAIT * 2 ** min(failures - FREE_FAILURES, 10))


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    org_id: str
    user_id: str
    has_password: bool
    last_sign_in_at: datetime | None


def _account(row: sa.Row) -> Account:
    return Account(row.id, row.email, row.org_id, row.user_id, row.password_hash is not None, row.last_sign_in_at)


async def hash_password(password: str) -> str:
    # Argon2 is CPU- and memory-bound for tens of milliseconds: off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def set_password(uow: UnitOfWork, org_id: str, user_id: str, password: str) -> Account:
    """Create the user's account or change its password (the caller ends the account's other sessions)."""
    user = await get_user(uow, org_id, user_id)
    validate_password(password, user.email)
    digest = await hash_password(password)
    row = (await uow.execute(sa.select(console_accounts).where(console_accounts.c.user_id == user.id))).one_or_none()
    now = utcnow()
    if row is not None:
        await uow.execute(
            sa.update(console_accounts)
            .where(console_accounts.c.id == row.id)
            .values(password_hash=digest, password_changed_at=now, failed_sign_ins=0, sign_in_blocked_until=None)
        )
        account_id = row.id
    else:
        account_id = await _insert(uow, user.email, org_id, user.id, password_hash=digest)
    return await get_account(uow, account_id)


async def _insert(uow: UnitOfWork, email: str, org_id: str, user_id: str, **values: object) -> str:
    taken = await uow.scalar(sa.select(console_accounts.c.org_id).where(console_accounts.c.email == email.lower()))
    if taken is not None:
        raise Conflict(f"{email} already signs in to the console (e-mail addresses are unique across orgs)")
    account_id = str(uuid.uuid4())
    await uow.execute(
        sa.insert(console_accounts).values(
            id=account_id, email=email.lower(), org_id=org_id, user_id=user_id, created_at=utcnow(), **values
        )
    )
    return account_id


async def get_account(uow: UnitOfWork, account_id: str) -> Account:
    row = (await uow.execute(sa.select(console_accounts).where(console_accounts.c.id == account_id))).one_or_none()
    if row is None:
        raise NotFound("account", account_id)
    return _account(row)


async def account_of_user(uow: UnitOfWork, org_id: str, user_id: str) -> Account | None:
    row = (
        await uow.execute(
            sa.select(console_accounts).where(
                console_accounts.c.user_id == user_id, console_accounts.c.org_id == org_id
            )
        )
    ).one_or_none()
    return _account(row) if row is not None else None


async def accounts_of_org(uow: UnitOfWork, org_id: str) -> dict[str, Account]:
    """user id → account, for the users page."""
    rows = await uow.execute(sa.select(console_accounts).where(console_accounts.c.org_id == org_id))
    return {row.user_id: _account(row) for row in rows}


async def _enabled(uow: UnitOfWork, user_id: str) -> bool:
    disabled = await uow.scalar(sa.select(users.c.disabled).where(users.c.id == user_id))
    return disabled is False


async def check_password(uow: UnitOfWork, email: str, password: str) -> Account:
    """The account these credentials open; SignInFailed otherwise (same answer for every reason), SignInBlocked
    while the account waits after a run of failures (the password is not even checked then)."""
    if not isinstance(email, str) or not isinstance(password, str) or len(password) > 1024:
        raise SignInFailed()
    row = (
        await uow.execute(sa.select(console_accounts).where(console_accounts.c.email == email.strip().lower()))
    ).one_or_none()
    now = utcnow()
    if row is not None and row.sign_in_blocked_until is not None and row.sign_in_blocked_until > now:
        raise SignInBlocked(row.sign_in_blocked_until - now)
    digest = row.password_hash if row is not None and row.password_hash else _DECOY_HASH
    account_id = row.id if row is not None else None
    try:
        await asyncio.to_thread(_hasher.verify, digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise SignInFailed(account_id) from None
    if row is None or not row.password_hash or not await _enabled(uow, row.user_id):
        raise SignInFailed(account_id)
    if _hasher.check_needs_rehash(digest):  # parameters were raised since: upgrade the stored hash now
        await uow.execute(
            sa.update(console_accounts)
            .where(console_accounts.c.id == row.id)
            .values(password_hash=await hash_password(password))
        )
    return _account(row)


async def account_for_identity(uow: UnitOfWork, subject: str, email: str | None, email_verified: bool) -> Account:
    """The account an identity provider's user signs in to: the one bound to `subject`, else the one with
    that (verified) e-mail, which is then bound to the subject. Nobody gets an account by OIDC alone: an
    operator creates the user first (the IdP says who someone is, casem says which org they belong to)."""
    row = (
        await uow.execute(sa.select(console_accounts).where(console_accounts.c.oidc_subject == subject))
    ).one_or_none()
    if row is None:
        if not email or not email_verified:
            raise SignInFailed()
        row = (
            await uow.execute(sa.select(console_accounts).where(console_accounts.c.email == email.lower()))
        ).one_or_none()
        if row is None:
            found = (await uow.execute(sa.select(users).where(sa.func.lower(users.c.email) == email.lower()))).all()
            if len(found) != 1:  # unknown, or the same address in several orgs: an operator must decide
                raise SignInFailed()
            account_id = await _insert(uow, email, found[0].org_id, found[0].id, oidc_subject=subject)
            return await get_account(uow, account_id)
        if row.oidc_subject not in (None, subject):
            raise SignInFailed()
        await uow.execute(
            sa.update(console_accounts).where(console_accounts.c.id == row.id).values(oidc_subject=subject)
        )
    if not await _enabled(uow, row.user_id):
        raise SignInFailed()
    return _account(row)


async def stamp_sign_in(uow: UnitOfWork, account_id: str) -> None:
    await uow.execute(
        sa.update(console_accounts)
        .where(console_accounts.c.id == account_id)
        .values(last_sign_in_at=utcnow(), failed_sign_ins=0, sign_in_blocked_until=None)
    )


async def count_failed_sign_in(uow: UnitOfWork, account_id: str) -> timedelta | None:
    """One more failed sign-in for the account (counted in the database, so every console replica sees it);
    answers how long it must now wait, if at all."""
    failures = await uow.scalar(
        sa.update(console_accounts)
        .where(console_accounts.c.id == account_id)
        .values(failed_sign_ins=console_accounts.c.failed_sign_ins + 1)
        .returning(console_accounts.c.failed_sign_ins)
    )
    wait = wait_after(int(failures or 0))
    if wait is not None:
        await uow.execute(
            sa.update(console_accounts)
            .where(console_accounts.c.id == account_id)
            .values(sign_in_blocked_until=utcnow() + wait)
        )
    return wait
