"""Slack's OAuth v2 install, per org: casem hands an org admin an authorize URL whose `state` says which org
and user asked (signed, short-lived); Slack sends the admin back with a code; the code is exchanged for the
bot token (oauth.v2.access), which is stored sealed, and the installing Slack user is linked to the admin."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from casem.adapters.secrets import SecretBox
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.chat import installations, users
from casem.app.chat.installations import Installation
from casem.domain.chat import SLACK
from casem.domain.errors import InvalidInput

AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
STATE_TTL = timedelta(minutes=10)


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def issue_state(secret: str, org_id: str, user_id: str, now: datetime | None = None) -> str:
    expires = int(((now or datetime.now(UTC)) + STATE_TTL).timestamp())
    body = base64.urlsafe_b64encode(json.dumps({"o": org_id, "u": user_id, "e": expires}).encode())
    return f"{body.decode()}.{_sign(secret, body)}"


def read_state(secret: str, state: str, now: datetime | None = None) -> tuple[str, str]:
    """(org id, user id) of a state this server issued and that has not expired."""
    body, _, signature = (state or "").partition(".")
    if not body or not hmac.compare_digest(_sign(secret, body.encode()), signature):
        raise InvalidInput("the install link is not one casem issued", "/state")
    data = json.loads(base64.urlsafe_b64decode(body.encode()))
    if data["e"] < (now or datetime.now(UTC)).timestamp():
        raise InvalidInput("the install link has expired: start the install again", "/state")
    return str(data["o"]), str(data["u"])


def authorize_url(client_id: str, scopes: str, state: str, redirect_uri: str | None) -> str:
    query = {"client_id": client_id, "scope": scopes, "state": state}
    if redirect_uri:
        query["redirect_uri"] = redirect_uri
    return f"{AUTHORIZE_URL}?{urlencode(query)}"


async def complete_install(
    uow: UnitOfWork, box: SecretBox, org_id: str, user_id: str, answer: dict[str, Any], default_project: str | None
) -> Installation:
    """Store what oauth.v2.access answered: the workspace, its bot, the bot token (sealed)."""
    team = answer.get("team") or {}
    if answer.get("token_type") != "bot" or not answer.get("access_token") or not team.get("id"):
        raise InvalidInput("Slack's answer holds no bot token for a workspace", "/code")
    found = await installations.install(
        uow,
        org_id,
        user_id,
        platform=SLACK,
        workspace_id=str(team["id"]),
        workspace_name=team.get("name"),
        app_id=answer.get("app_id"),
        bot_user_id=answer.get("bot_user_id"),
        sealed_token=box.seal(str(answer["access_token"])),
        default_project_id=default_project,
    )
    installer = (answer.get("authed_user") or {}).get("id")
    if installer:
        await users.link_user(uow, org_id, SLACK, found.workspace_id, str(installer), user_id, users.INSTALL)
    return found
