"""Who a chat request acts for: the org the workspace is installed in, and the casem user the chat user maps to."""

from __future__ import annotations

from dataclasses import dataclass

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.chat.installations import Installation, installation_for
from casem.app.chat.users import UnmappedChatUser, link_by_verified_email, linked_user
from casem.domain.chat import Conversation


@dataclass(frozen=True)
class ChatIdentity:
    """A chat user as the platform describes them (the e-mail only counts when the platform vouches for it)."""

    user_id: str
    display_name: str = ""
    email: str = ""
    email_verified: bool = False


async def workspace_scope(uow: UnitOfWork, conversation: Conversation, caller_org: str | None) -> Installation:
    """The installation of the conversation's workspace; NotFound when it is not installed, or installed in
    another org than the caller's (`caller_org`: the org of the caller's keys, or the act-as org)."""
    return await installation_for(uow, conversation.platform, conversation.workspace_id, caller_org)


async def mapped_user(uow: UnitOfWork, installation: Installation, who: ChatIdentity | None) -> str | None:
    """The enabled casem user the chat user maps to (linking them by a verified e-mail on first sight), or None."""
    if who is None or not who.user_id:
        return None
    found = await linked_user(uow, installation.org_id, installation.platform, installation.workspace_id, who.user_id)
    if found is not None:
        return found
    return await link_by_verified_email(
        uow,
        installation.org_id,
        installation.platform,
        installation.workspace_id,
        who.user_id,
        who.email,
        who.email_verified,
    )


async def acting_user(uow: UnitOfWork, installation: Installation, who: ChatIdentity | None) -> str:
    """The casem user a chat action acts as; UnmappedChatUser when there is none."""
    user = await mapped_user(uow, installation, who)
    if user is None:
        raise UnmappedChatUser(installation.platform, who.user_id if who else "")
    return user
