"""The Teams bridge: Bot Framework activities, each validated before anything is done.

Validation (Bot Framework's "connector to bot" rules): a Bearer JWT signed RS256 by one of the configured
signing keys (CASEM_TEAMS_JWKS, a JWKS document: the keys are configured, not fetched), issued by
https://api.botframework.com, for this bot's app id (the audience), unexpired (five minutes of clock skew),
its key endorsing the activity's channel, and its `serviceurl` claim equal to the activity's serviceUrl. Any
failure is a 401 and nothing is recorded.

Supported: the "Add to case" message action (invoke `composeExtension/submitAction`, command `addToCase`,
the case key in the `caseKey` parameter: the message becomes an excerpt and the case is linked to the message's
thread, so casem's changes to the case are posted there), the buttons of the cards casem posts as Adaptive Card
universal actions (invoke `adaptiveCard/action`, verbs `acknowledge`, `assign_to_me`, `close`, data `caseId`),
and `link CODE` said to the bot. Invokes are answered in the HTTP response (Teams shows it), so they are applied
inline; they still go through the inbox, so a redelivered activity (same id) is applied once.

Each validated activity's `serviceUrl` is remembered for its tenant's installation: it is where the
msteams-delivery flavor posts casem's cards (casem/adapters/chat/bot_connector.py).
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

import jwt
import structlog
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from casem.app.auth import AuthenticationFailed
from casem.app.chat import inbox, installations, service, users
from casem.app.chat.access import ChatIdentity, acting_user, mapped_user
from casem.app.context import AppContext
from casem.domain.chat import (
    ACKNOWLEDGE,
    ASSIGN_TO_ME,
    CLOSE,
    TEAMS,
    TEAMS_VERBS,
    ChatAction,
    Conversation,
    chat_message,
)
from casem.domain.errors import DomainError, NotFound
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings

log = structlog.get_logger("case-chat-interactions.teams")
TEAMS_REQUESTS = Counter("casem_chat_teams_activities_total", "Teams activities", ["kind", "outcome"])

VERBS = TEAMS_VERBS
DONE = {ACKNOWLEDGE: "acknowledged", ASSIGN_TO_ME: "assigned to you", CLOSE: "closed"}
ADD_TO_CASE = "addToCase"
CLOCK_SKEW_S = 300
_TAG = re.compile(r"<[^>]+>")
THREAD_MARK = ";messageid="


class InvalidToken(Exception):  # noqa: N818 - reads as "raise InvalidToken(...)"
    pass


class TeamsBridge:
    def __init__(self, ctx: AppContext, settings: BridgeSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.keys: dict[str, tuple[jwt.PyJWK, list[str] | None]] = {}
        for raw in settings.teams_jwks.get("keys", []):
            self.keys[str(raw.get("kid"))] = (jwt.PyJWK.from_dict(raw), raw.get("endorsements"))

    def validate(self, authorization: str, activity: dict[str, Any]) -> dict[str, Any]:
        if not self.settings.teams_app_id or not self.keys:
            raise InvalidToken("the Teams bridge has no app id or signing keys configured")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("no Bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"not a JWT: {exc}") from None
        found = self.keys.get(str(header.get("kid")))
        if found is None:
            raise InvalidToken("signed by a key that is not configured")
        key, endorsements = found
        channel = str(activity.get("channelId") or "")
        if channel and endorsements is not None and channel not in endorsements:
            raise InvalidToken(f"the signing key does not endorse channel {channel!r}")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.settings.teams_app_id,
                issuer=self.settings.teams_issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if claims.get("serviceurl") != activity.get("serviceUrl"):
            raise InvalidToken("the token's serviceurl is not the activity's serviceUrl")
        return claims

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            activity = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        try:
            self.validate(request.headers.get("Authorization", ""), activity)
        except InvalidToken as exc:
            TEAMS_REQUESTS.labels("any", "unauthorized").inc()
            log.info("teams activity refused", reason=str(exc))
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        kind = activity.get("name") if activity.get("type") == "invoke" else activity.get("type")
        tenant = str(((activity.get("channelData") or {}).get("tenant") or {}).get("id") or "")
        tenant = tenant or str((activity.get("conversation") or {}).get("tenantId") or "")
        delivery = str(activity.get("id") or "")
        if not tenant or not delivery:
            return JSONResponse({"error": "the activity names no tenant or id"}, status_code=400)
        async with self.ctx.uow() as uow:
            new = await inbox.accept(
                uow, delivery_id=delivery, platform=TEAMS, workspace_id=tenant, kind="teams.activity", payload=activity
            )
            service_url = activity.get("serviceUrl")
            if _usable_service_url(service_url):
                # Validated above (the token's serviceurl claim): where casem's posts to this tenant go.
                await installations.remember_service_url(uow, TEAMS, tenant, str(service_url))
            await uow.commit()
        answer = await self._apply(tenant, f"{TEAMS}:{tenant}:{delivery}"[:512], activity) if new else None
        TEAMS_REQUESTS.labels(str(kind), "applied" if new else "duplicate").inc()
        if activity.get("type") != "invoke":
            return Response(status_code=200)
        return JSONResponse(answer or _invoke_answer(activity, "Already done."))

    async def _apply(self, tenant: str, item_id: str, activity: dict[str, Any]) -> dict[str, Any] | None:
        """Apply the activity with its inbox row (done in the same commit); the invoke answer, if any."""
        sender = activity.get("from") or {}
        who = ChatIdentity(str(sender.get("aadObjectId") or sender.get("id") or ""), str(sender.get("name") or ""))
        answer: dict[str, Any] | None = None
        try:
            async with self.ctx.uow() as uow:
                if await inbox.claim(uow, item_id) is None:
                    return None
                inst = await installations.installation_for(uow, TEAMS, tenant)
                answer = await self._dispatch(uow, inst, who, activity)
                await inbox.finish(uow, item_id)
                await uow.commit()
        except (DomainError, AuthenticationFailed) as exc:
            async with self.ctx.uow() as uow:
                if await inbox.claim(uow, item_id) is not None:
                    await inbox.finish(uow, item_id, error=str(exc)[:2000])
                    await uow.commit()
            text = (
                f"No {exc.resource} {exc.ident} here."
                if isinstance(exc, NotFound)
                else str(getattr(exc, "detail", exc))
            )
            answer = _invoke_answer(activity, text)
        return answer

    async def _dispatch(
        self, uow: Any, inst: Any, who: ChatIdentity, activity: dict[str, Any]
    ) -> dict[str, Any] | None:
        value = activity.get("value") or {}
        conversation = _conversation(inst.workspace_id, activity)
        if activity.get("type") == "invoke" and activity.get("name") == "adaptiveCard/action":
            action = value.get("action") or {}
            kind = VERBS.get(str(action.get("verb") or ""))
            if kind is None:
                return _invoke_answer(activity, "casem does not know this button.")
            actor = await acting_user(uow, inst, who)
            case_id = str((action.get("data") or {}).get("caseId") or "")
            case = await service.perform_action(
                uow, inst.org_id, actor, case_id, ChatAction(kind), conversation, who.user_id
            )
            return _invoke_answer(activity, f"{case.key} {DONE[kind]}.")
        if activity.get("type") == "invoke" and activity.get("name") == "composeExtension/submitAction":
            if value.get("commandId") != ADD_TO_CASE:
                return _invoke_answer(activity, "casem does not know this command.")
            payload = value.get("messagePayload") or {}
            author = (payload.get("from") or {}).get("user") or {}
            text = html.unescape(_TAG.sub("", str((payload.get("body") or {}).get("content") or ""))).strip()
            message = chat_message(
                message_id=payload.get("id"),
                author_id=author.get("id") or "",
                author_name=author.get("displayName") or "",
                text=text,
                sent_at=_time(payload.get("createdDateTime")),
                permalink=payload.get("linkToMessage") or "",
                pointer="/value/messagePayload",
            )
            case_key = str((value.get("data") or {}).get("caseKey") or "").strip()
            adder = await mapped_user(uow, inst, who)
            # The message's thread: its excerpt comes from there, and the case is linked to it (mirrored there).
            source = Conversation(TEAMS, inst.workspace_id, conversation.channel_id, _thread_of(activity, payload))
            outcome = await service.append_excerpt(uow, inst.org_id, adder, case_key, source, [message])
            await service.link_case(uow, inst.org_id, adder, outcome.case.id, source)
            said = "Added to" if outcome.cell is not None else "Already on"
            return {"composeExtension": {"type": "message", "text": f"{said} {outcome.case.key}."}}
        if activity.get("type") == "message":
            words = str(activity.get("text") or "").split()
            if len(words) == 2 and words[0].lower() == "link":
                await users.redeem_link_code(uow, inst.org_id, TEAMS, inst.workspace_id, who.user_id, words[1])
        return None


def _conversation(tenant: str, activity: dict[str, Any]) -> Conversation:
    data = activity.get("channelData") or {}
    conversation_id = str((activity.get("conversation") or {}).get("id") or "").split(THREAD_MARK, 1)[0]
    channel = str((data.get("channel") or {}).get("id") or conversation_id)
    return Conversation(TEAMS, tenant, channel or "unknown", str(activity.get("replyToId") or ""))


def _usable_service_url(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(("https://", "http://"))
        and len(value) <= installations.SERVICE_URL_MAX
    )


def _thread_of(activity: dict[str, Any], payload: dict[str, Any]) -> str:
    """The id of the channel thread (its root message) a message was said in; "" outside channels (chats have
    no threads). A reply names its root in replyToId; Teams also puts the root in the conversation id."""
    conversation = activity.get("conversation") or {}
    if conversation.get("conversationType") != "channel":
        return ""
    _, _, root = str(conversation.get("id") or "").partition(THREAD_MARK)
    return str(payload.get("replyToId") or root or payload.get("id") or "")


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def _invoke_answer(activity: dict[str, Any], text: str) -> dict[str, Any]:
    if activity.get("name") == "composeExtension/submitAction":
        return {"composeExtension": {"type": "message", "text": text}}
    return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text}
