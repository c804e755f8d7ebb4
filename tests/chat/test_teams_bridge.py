"""The Teams bridge: Bot Framework activities carrying JWTs signed with a test key set, validated against it;
"Add to case" (message action) and the notification buttons (Adaptive Card universal actions)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import cases, chat_inbox, timeline_cells
from casem.app.cases.service import NewCase, create_case
from casem.app.chat import installations, users
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.services.case_chat_interactions.bridge.settings import BOT_FRAMEWORK_ISSUER, BridgeSettings
from casem.services.case_chat_interactions.service import build_bridge

APP_ID = "6b2a8e0c-4a43-4a3f-9a0e-0b5d2c7f9d11"
SERVICE_URL = "https://smba.trafficmanager.net/amer/"


def key_pair(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "use": "sig", "alg": "RS256", "endorsements": ["msteams"]}


SIGNER, SIGNER_JWK = key_pair("test-key-1")
STRANGER, _ = key_pair("test-key-1")  # same kid, another key: a forgery


def token(key: rsa.RSAPrivateKey = SIGNER, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": BOT_FRAMEWORK_ISSUER, "aud": APP_ID, "nbf": now - 5, "exp": now + 3600, "serviceurl": SERVICE_URL}
    claims.update(overrides)
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256", headers={"kid": "test-key-1"}
    )


@dataclass
class TeamsRig:
    ctx: AppContext
    http: httpx.AsyncClient
    org_id: str
    admin: str
    tenant: str
    case_id: str
    case_key: str

    def activity(
        self, kind: str, name: str | None = None, value: Any = None, text: str | None = None, aad: str = "aad-ada"
    ) -> dict:
        found = {
            "type": kind,
            "id": f"f:{uuid.uuid4().hex}",
            "timestamp": "2026-11-29T08:00:00.000Z",
            "serviceUrl": SERVICE_URL,
            "channelId": "msteams",
            "from": {"id": f"29:{aad}", "name": "Ada", "aadObjectId": aad},
            "conversation": {
                "id": "19:abc@thread.tacv2;messageid=1700",
                "conversationType": "channel",
                "tenantId": self.tenant,
            },
            "recipient": {"id": f"28:{APP_ID}", "name": "casem"},
            "channelData": {"tenant": {"id": self.tenant}, "channel": {"id": "19:abc@thread.tacv2"}},
        }
        if name:
            found["name"] = name
        if value is not None:
            found["value"] = value
        if text is not None:
            found["text"] = text
        return found

    async def send(self, activity: dict, bearer: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer if bearer is not None else token()}"}
        return await self.http.post("/teams/messages", json=activity, headers=headers)

    def button(self, verb: str, aad: str = "aad-ada") -> dict:
        value = {
            "action": {"type": "Action.Execute", "verb": verb, "data": {"caseId": self.case_id}},
            "trigger": "manual",
        }
        return self.activity("invoke", "adaptiveCard/action", value, aad=aad)

    async def case(self) -> sa.Row:
        async with self.ctx.uow(read_only=True) as uow:
            return (await uow.execute(sa.select(cases).where(cases.c.id == self.case_id))).one()

    async def excerpts(self) -> list[sa.Row]:
        async with self.ctx.uow(read_only=True) as uow:
            q = sa.select(timeline_cells).where(
                timeline_cells.c.case_id == self.case_id, timeline_cells.c.type == "CHAT_EXCERPT"
            )
            return list((await uow.execute(q)).all())

    async def inbox_rows(self) -> int:
        async with self.ctx.uow(read_only=True) as uow:
            return int(await uow.scalar(sa.select(sa.func.count()).select_from(chat_inbox)))


@pytest.fixture
async def teams(context: AppContext) -> AsyncIterator[TeamsRig]:  # noqa: F811
    settings = BridgeSettings(teams_app_id=APP_ID, teams_jwks={"keys": [SIGNER_JWK]})
    bridge = build_bridge(context, settings, box=SecretBox([b"0" * 43 + b"="]))
    tag = uuid.uuid4().hex[:6]
    tenant = f"72f988bf-{tag}"
    async with context.uow() as uow:
        creds = await bootstrap_org(uow, f"org-{tag}", f"ada@{tag}.example")
        project = await create_project(uow, creds.org_id, creds.user_id, key=("M" + tag).upper(), name="Teams")
        await installations.install(uow, creds.org_id, creds.user_id, platform="teams", workspace_id=tenant)
        case = await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, "Mail delivery delayed"))
        await uow.commit()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bridge.app), base_url="http://bridge") as http:
        yield TeamsRig(context, http, creds.org_id, creds.user_id, tenant, case.id, case.key)
    await bridge.close()


async def test_activities_without_a_valid_bot_framework_token_are_refused(teams: TeamsRig) -> None:
    activity = teams.button("acknowledge")
    now = int(time.time())
    bad = {
        "no token": "",
        "forged signature": token(STRANGER),
        "another bot": token(aud="someone-else"),
        "another issuer": token(iss="https://sts.windows.net/evil/"),
        "expired": token(exp=now - 3600, nbf=now - 7200),
        "another service url": token(serviceurl="https://evil.example/"),
        "not a jwt": "abc.def",
    }
    for why, bearer in bad.items():
        answer = await teams.send(activity, bearer)
        assert answer.status_code == 401, why
    unendorsed = {**activity, "channelId": "webchat"}
    assert (await teams.send(unendorsed)).status_code == 401
    assert await teams.inbox_rows() == 0 and (await teams.case()).status == "OPEN"


async def test_notification_buttons_act_as_the_linked_user(teams: TeamsRig) -> None:
    stranger = await teams.send(teams.button("acknowledge", aad="aad-eve"))
    assert stranger.status_code == 200 and "not linked" in stranger.json()["value"]
    assert (await teams.case()).status == "OPEN"

    async with teams.ctx.uow() as uow:
        code, _ = await users.create_link_code(uow, teams.org_id, teams.admin)
        await uow.commit()
    assert (await teams.send(teams.activity("message", text=f"link {code}"))).status_code == 200

    ack = await teams.send(teams.button("acknowledge"))
    assert ack.json() == {
        "statusCode": 200,
        "type": "application/vnd.microsoft.activity.message",
        "value": f"{teams.case_key} acknowledged.",
    }
    mine = await teams.send(teams.button("assign_to_me"))
    assert mine.json()["value"] == f"{teams.case_key} assigned to you."
    row = await teams.case()
    assert (row.status, row.assignee_id) == ("IN_PROGRESS", teams.admin)
    redelivered = teams.button("close")
    first = await teams.send(redelivered)
    again = await teams.send(redelivered)  # the same activity id, delivered twice
    assert first.json()["value"] == f"{teams.case_key} closed." and again.json()["value"] == "Already done."
    assert (await teams.case()).status == "CLOSED"


async def test_add_to_case_from_a_teams_message(teams: TeamsRig) -> None:
    def submit(case_key: str, message_id: str = "1700000000123") -> dict:
        value = {
            "commandId": "addToCase",
            "commandContext": "message",
            "data": {"caseKey": case_key},
            "messagePayload": {
                "id": message_id,
                "replyToId": None,
                "createdDateTime": "2026-11-29T07:59:01.123Z",
                "importance": "normal",
                "body": {"contentType": "html", "content": "<p>Queue &amp; relay are <b>backed up</b></p>"},
                "from": {"user": {"id": "aad-bob", "displayName": "Bob", "userIdentityType": "aadUser"}},
                "linkToMessage": f"https://teams.microsoft.com/l/message/19:abc@thread.tacv2/{message_id}",
            },
        }
        return teams.activity("invoke", "composeExtension/submitAction", value)

    added = await teams.send(submit(teams.case_key.lower()))
    assert added.status_code == 200
    assert added.json() == {"composeExtension": {"type": "message", "text": f"Added to {teams.case_key}."}}
    again = await teams.send(submit(teams.case_key))  # the same message, from another invoke
    assert again.json()["composeExtension"]["text"] == f"Already on {teams.case_key}."
    unknown = await teams.send(submit("NOPE-9"))
    assert unknown.status_code == 200 and unknown.json()["composeExtension"]["text"] == "No case NOPE-9 here."
    [cell] = await teams.excerpts()
    [message] = cell.content["messages"]
    assert message["text"] == "Queue & relay are backed up" and message["author_name"] == "Bob"
    assert message["permalink"].startswith("https://teams.microsoft.com/l/message/")
    assert cell.content["conversation"]["platform"] == "teams"


async def test_a_tenant_nobody_registered_gets_an_answer_not_an_error(teams: TeamsRig) -> None:
    stranger = teams.button("acknowledge")
    stranger["channelData"]["tenant"]["id"] = "tenant-nobody-registered"
    answer = await teams.send(stranger)
    assert answer.status_code == 200
    assert answer.json()["value"] == "No chat workspace tenant-nobody-registered here."
    assert (await teams.case()).status == "OPEN"
