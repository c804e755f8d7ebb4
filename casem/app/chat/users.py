"""Chat user ↔ casem user: a chat user acts with the permissions of the casem user they map to.

Mapped by a verified e-mail address (the chat platform says the address is confirmed and an enabled casem
user of the org has it), or linked explicitly: the casem user asks for a one-time code (authenticated as
themselves) and says it to the bot (`/case link CODE` in Slack, `link CODE` to the Teams bot), which proves
both identities at once. The installer of a Slack workspace is linked at install time.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from casem.adapters.storage.tables import chat_link_codes, chat_user_links, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.auth import AuthenticationFailed
from casem.domain.errors import InvalidInput

LINK_CODE_TTL = timedelta(minutes=15)
EMAIL, CODE, INSTALL = "email", "code", "install"


class UnmappedChatUser(AuthenticationFailed):
    """The chat user maps to no casem user: they must link their account before acting on cases (a gRPC caller
    gets PERMISSION_DENIED)."""

    def __init__(self, platform: str, chat_user_id: str) -> None:
        how = "/case link CODE" if platform == "slack" else "link CODE"
        super().__init__(
            f"your {platform} account is not linked to a casem user: get a link code from casem "
            f"(ChatInteractionsService.CreateUserLinkCode, as yourself) and send `{how}`, or use the same "
            "verified e-mail address in both"
        )
        self.platform = platform
        self.chat_user_id = chat_user_id


async def linked_user(uow: UnitOfWork, org_id: str, platform: str, workspace_id: str, chat_user_id: str) -> str | None:
    """The enabled casem user this chat user is linked to, if any."""
    row = (
        await uow.execute(
            sa.select(chat_user_links.c.user_id)
            .join(users, users.c.id == chat_user_links.c.user_id)
            .where(
                chat_user_links.c.platform == platform,
                chat_user_links.c.workspace_id == workspace_id,
                chat_user_links.c.chat_user_id == chat_user_id,
                chat_user_links.c.org_id == org_id,
                users.c.disabled.is_(False),
            )
        )
    ).first()
    return str(row.user_id) if row is not None else None


async def _link(
    uow: UnitOfWork, org_id: str, platform: str, workspace_id: str, chat_user_id: str, user_id: str, method: str
) -> None:
    key = {"platform": platform, "workspace_id": workspace_id, "chat_user_id": chat_user_id}
    await uow.execute(sa.delete(chat_user_links).filter_by(**key))
    await uow.execute(
        sa.insert(chat_user_links).values(
            **key, org_id=org_id, user_id=user_id, method=method, created_at=datetime.now(UTC)
        )
    )


async def link_user(
    uow: UnitOfWork, org_id: str, platform: str, workspace_id: str, chat_user_id: str, user_id: str, method: str
) -> None:
    await _link(uow, org_id, platform, workspace_id, chat_user_id, user_id, method)


async def link_by_verified_email(
    uow: UnitOfWork, org_id: str, platform: str, workspace_id: str, chat_user_id: str, email: str | None, verified: bool
) -> str | None:
    """Link the chat user to the org's enabled user with this address, when the platform vouches for it."""
    if not email or not verified:
        return None
    row = (
        await uow.execute(
            sa.select(users.c.id).where(
                users.c.org_id == org_id,
                sa.func.lower(users.c.email) == email.strip().lower(),
                users.c.disabled.is_(False),
            )
        )
    ).first()
    if row is None:
        return None
    await _link(uow, org_id, platform, workspace_id, chat_user_id, str(row.id), EMAIL)
    return str(row.id)


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


async def create_link_code(
    uow: UnitOfWork, org_id: str, user_id: str, now: datetime | None = None
) -> tuple[str, datetime]:
    """A one-time code (stored hashed) that links whichever chat user says it to `user_id`."""
    now = now or datetime.now(UTC)
    code = "-".join(secrets.token_hex(3).upper() for _ in range(3))
    expires = now + LINK_CODE_TTL
    await uow.execute(
        sa.insert(chat_link_codes).values(code_hash=_hash(code), org_id=org_id, user_id=user_id, expires_at=expires)
    )
    return code, expires


async def redeem_link_code(
    uow: UnitOfWork, org_id: str, platform: str, workspace_id: str, chat_user_id: str, code: str
) -> str:
    """Link the chat user to the code's casem user; the code must be of this org, unused and unexpired."""
    now = datetime.now(UTC)
    row = (
        await uow.execute(sa.select(chat_link_codes).where(chat_link_codes.c.code_hash == _hash(code or "")))
    ).first()
    if row is None or row.org_id != org_id or row.used_at is not None or row.expires_at <= now:
        raise InvalidInput("the link code is unknown, used or expired: ask casem for a new one", "/code")
    await uow.execute(
        sa.update(chat_link_codes).where(chat_link_codes.c.code_hash == row.code_hash).values(used_at=now)
    )
    await _link(uow, org_id, platform, workspace_id, chat_user_id, row.user_id, CODE)
    return str(row.user_id)
