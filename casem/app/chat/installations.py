"""Chat workspaces installed per org: a Slack team (OAuth v2 install) or a Teams tenant, its bot token sealed at
rest, its default project, and each channel's default project."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import chat_channel_settings, chat_installations, projects
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.chat import validate_platform
from casem.domain.errors import Conflict, InvalidInput, NotFound

SERVICE_URL_MAX = 2048


@dataclass(frozen=True)
class Installation:
    id: str
    org_id: str
    platform: str
    workspace_id: str
    workspace_name: str | None
    app_id: str | None
    bot_user_id: str | None
    sealed_token: str | None
    default_project_id: str | None
    service_url: str | None = None  # Teams: the Bot Connector service URL casem posts to

    def bot_token(self, box: SecretBox) -> str:
        if not self.sealed_token:
            raise NotFound("chat bot token", self.workspace_id)
        return box.open(self.sealed_token)


def _installation(row: sa.Row) -> Installation:
    return Installation(
        id=row.id,
        org_id=row.org_id,
        platform=row.platform,
        workspace_id=row.workspace_id,
        workspace_name=row.workspace_name,
        app_id=row.app_id,
        bot_user_id=row.bot_user_id,
        sealed_token=row.bot_token,
        default_project_id=row.default_project_id,
        service_url=row.service_url,
    )


async def find_installation(uow: UnitOfWork, platform: str, workspace_id: str) -> Installation | None:
    row = (
        await uow.execute(
            sa.select(chat_installations).where(
                chat_installations.c.platform == platform, chat_installations.c.workspace_id == workspace_id
            )
        )
    ).first()
    return _installation(row) if row is not None else None


async def installation_for(
    uow: UnitOfWork, platform: str, workspace_id: str, org_id: str | None = None
) -> Installation:
    """The workspace's installation; NotFound when it is not installed (or, with `org_id`, installed in another
    org: the caller cannot tell the two apart)."""
    found = await find_installation(uow, validate_platform(platform), workspace_id)
    if found is None or (org_id is not None and found.org_id != org_id):
        raise NotFound("chat workspace", workspace_id)
    return found


async def remember_service_url(uow: UnitOfWork, platform: str, workspace_id: str, service_url: str) -> bool:
    """Keep the workspace's Bot Connector service URL (Teams sends it with every activity; it changes rarely, e.g.
    when a tenant moves region). Only a URL from a validated activity may be passed here: casem posts to it.
    Nothing is written when it is unchanged or the workspace is not installed; True when it was written."""
    if not service_url.startswith(("https://", "http://")) or len(service_url) > SERVICE_URL_MAX:
        raise InvalidInput(f"serviceUrl must be an http(s) URL of at most {SERVICE_URL_MAX} characters", "/serviceUrl")
    column = chat_installations.c.service_url
    result = await uow.execute(
        sa.update(chat_installations)
        .where(
            chat_installations.c.platform == platform,
            chat_installations.c.workspace_id == workspace_id,
            sa.or_(column.is_(None), column != service_url),
        )
        .values(service_url=service_url, updated_at=datetime.now(UTC))
    )
    return bool(result.rowcount)


async def org_installations(uow: UnitOfWork, org_id: str, platform: str) -> list[Installation]:
    rows = await uow.execute(
        sa.select(chat_installations)
        .where(chat_installations.c.org_id == org_id, chat_installations.c.platform == platform)
        .order_by(chat_installations.c.created_at)
    )
    return [_installation(r) for r in rows]


async def _check_project(uow: UnitOfWork, org_id: str, project_id: str | None, pointer: str) -> str | None:
    if not project_id:
        return None
    found = await uow.scalar(
        sa.select(projects.c.id).where(
            projects.c.org_id == org_id, sa.or_(projects.c.id == project_id, projects.c.key == project_id.upper())
        )
    )
    if found is None:
        raise InvalidInput(f"project {project_id!r} does not exist", pointer)
    return str(found)


async def install(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    *,
    platform: str,
    workspace_id: str,
    workspace_name: str | None = None,
    app_id: str | None = None,
    bot_user_id: str | None = None,
    sealed_token: str | None = None,
    default_project_id: str | None = None,
) -> Installation:
    """Install (or re-install, e.g. a new bot token) a workspace for the org. A workspace belongs to one org:
    installing it for a second one is a Conflict."""
    platform = validate_platform(platform)
    if not workspace_id or len(workspace_id) > 255:
        raise InvalidInput("workspace_id must be 1 to 255 characters", "/workspace_id")
    project = await _check_project(uow, org_id, default_project_id, "/default_project_id")
    existing = await find_installation(uow, platform, workspace_id)
    now = datetime.now(UTC)
    values = {
        "workspace_name": workspace_name,
        "app_id": app_id,
        "bot_user_id": bot_user_id,
        "updated_at": now,
    }
    if sealed_token is not None:
        values["bot_token"] = sealed_token
    if project is not None:
        values["default_project_id"] = project
    if existing is not None:
        if existing.org_id != org_id:
            raise Conflict(f"this {platform} workspace is installed for another organization")
        await uow.execute(sa.update(chat_installations).where(chat_installations.c.id == existing.id).values(**values))
    else:
        await uow.execute(
            sa.insert(chat_installations).values(
                id=str(uuid.uuid4()),
                org_id=org_id,
                platform=platform,
                workspace_id=workspace_id,
                installed_by_id=actor_id,
                created_at=now,
                bot_token=sealed_token,
                default_project_id=project,
                **{k: v for k, v in values.items() if k not in ("bot_token", "default_project_id")},
            )
        )
    found = await find_installation(uow, platform, workspace_id)
    assert found is not None
    return found


async def set_channel_project(
    uow: UnitOfWork, installation: Installation, channel_id: str, project: str, actor_id: str | None
) -> str:
    """The project `/case new` opens cases in for this channel (a project id or key of the org)."""
    project_id = await _check_project(uow, installation.org_id, project, "/project")
    assert project_id is not None
    key = {"platform": installation.platform, "workspace_id": installation.workspace_id, "channel_id": channel_id}
    await uow.execute(sa.delete(chat_channel_settings).filter_by(**key))
    await uow.execute(
        sa.insert(chat_channel_settings).values(
            **key,
            org_id=installation.org_id,
            default_project_id=project_id,
            updated_by_id=actor_id,
            updated_at=datetime.now(UTC),
        )
    )
    return project_id


async def channel_project(uow: UnitOfWork, installation: Installation, channel_id: str) -> str | None:
    """The channel's default project, else the workspace's, else None."""
    found = await uow.scalar(
        sa.select(chat_channel_settings.c.default_project_id).where(
            chat_channel_settings.c.platform == installation.platform,
            chat_channel_settings.c.workspace_id == installation.workspace_id,
            chat_channel_settings.c.channel_id == channel_id,
        )
    )
    return str(found) if found else installation.default_project_id
