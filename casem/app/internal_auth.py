"""Service credentials: how a trusted internal caller (case-indexer) acts for the org a payload belongs to.

case-indexer creates cases for every org, so it cannot hold each org's keys. Instead it sends a shared
secret configured on both sides (CASEM_INTERNAL_TOKEN) plus the org and the user to act as, taken from
the intake payload that case-intake authenticated. case-api still checks that the user belongs to that
org and is enabled, so the token lets a caller act only as real, enabled users, never invent one.
Without CASEM_INTERNAL_TOKEN set on case-api, internal metadata is refused outright.
"""

from __future__ import annotations

import hmac
import os

import sqlalchemy as sa

from casem.adapters.storage.tables import users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.auth import AuthenticationFailed, Principal

INTERNAL_TOKEN_ENV = "CASEM_INTERNAL_TOKEN"
INTERNAL_TOKEN_METADATA = "x-casem-internal-token"
ACT_AS_ORG_METADATA = "x-casem-act-as-org"
ACT_AS_USER_METADATA = "x-casem-act-as-user"


def configured_token(env: dict[str, str] | None = None) -> str | None:
    value = (os.environ if env is None else env).get(INTERNAL_TOKEN_ENV)
    return value or None


def internal_metadata(token: str, org_id: str, user_id: str) -> tuple[tuple[str, str], ...]:
    return (
        (INTERNAL_TOKEN_METADATA, token),
        (ACT_AS_ORG_METADATA, org_id),
        (ACT_AS_USER_METADATA, user_id),
    )


def check_internal_token(expected: str | None, token: str) -> None:
    if expected is None:
        raise AuthenticationFailed("internal credentials are not enabled on this server")
    # Constant-time comparison: the token must not leak through response timing.
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationFailed("invalid internal credentials")


async def users_to_act_as(uow: UnitOfWork, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of the wanted (org id, user id) pairs, those a service credential may act as (one query): real,
    enabled users of that org. Call `check_internal_token` first."""
    user_ids = sorted({user_id for _, user_id in wanted if user_id})
    allowed: set[tuple[str, str]] = set()
    for start in range(0, len(user_ids), 500):
        rows = await uow.execute(
            sa.select(users.c.org_id, users.c.id).where(
                users.c.id.in_(user_ids[start : start + 500]), users.c.disabled.is_(False)
            )
        )
        allowed.update((org_id, user_id) for org_id, user_id in rows if (org_id, user_id) in wanted)
    return allowed


async def authenticate_internal(
    uow: UnitOfWork, expected: str | None, token: str, org_id: str | None, user_id: str | None
) -> Principal:
    check_internal_token(expected, token)
    if not org_id or not user_id:
        names = f"{ACT_AS_ORG_METADATA}/{ACT_AS_USER_METADATA}"
        raise AuthenticationFailed(f"internal calls name the org and the user to act as in {names}")
    row = (await uow.execute(sa.select(users.c.org_id, users.c.disabled).where(users.c.id == user_id))).one_or_none()
    if row is None or row.org_id != org_id or row.disabled:
        raise AuthenticationFailed("the user to act as is unknown, of another org, or disabled")
    return Principal(org_id=org_id, user_id=user_id)
