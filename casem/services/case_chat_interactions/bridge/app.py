"""The bridges' HTTP endpoints: Slack's Events API, interactivity and slash commands, the OAuth v2 install
callback, and Bot Framework activities from Teams.

Every Slack request is verified with the app's signing secret (slack_sdk's SignatureVerifier: v0 HMAC-SHA256
over `v0:{timestamp}:{body}`, timestamps older than five minutes refused): a bad or stale signature is a 401
and nothing is recorded. A verified request is written to the inbox and answered at once; a retry of one
already recorded (X-Slack-Retry-Num, same event id or trigger id) is answered without recording it again.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import Counter
from slack_sdk.signature import SignatureVerifier

from casem.adapters.chat.slack_web import SlackApiError, SlackWebApi
from casem.adapters.secrets import SecretBox
from casem.app.chat import oauth
from casem.app.context import AppContext
from casem.domain.chat import SLACK
from casem.domain.errors import DomainError
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings
from casem.services.case_chat_interactions.bridge.teams import TeamsBridge
from casem.services.case_chat_interactions.bridge.worker import InboxWorker, InboxWriter

log = structlog.get_logger("case-chat-interactions.bridge")

REQUESTS = Counter("casem_chat_requests_total", "Chat bridge requests", ["platform", "kind", "outcome"])


def _unauthorized(kind: str, platform: str = SLACK) -> JSONResponse:
    REQUESTS.labels(platform, kind, "unauthorized").inc()
    return JSONResponse({"error": "invalid or stale request signature"}, status_code=401)


def create_bridge_app(
    ctx: AppContext,
    settings: BridgeSettings,
    worker: InboxWorker,
    writer: InboxWriter,
    api: SlackWebApi,
    box: SecretBox,
    teams: TeamsBridge | None = None,
) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    verifier = SignatureVerifier(settings.slack_signing_secret) if settings.slack_signing_secret else None

    async def verified_body(request: Request) -> bytes | None:
        body = await request.body()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if verifier is None or not timestamp or not signature or not verifier.is_valid(body, timestamp, signature):
            return None
        return body

    async def record(
        kind: str, workspace_id: str, delivery_id: str, payload: dict[str, Any], retry: str | None
    ) -> Response:
        if not workspace_id or not delivery_id:
            REQUESTS.labels(SLACK, kind, "malformed").inc()
            return JSONResponse({"error": "the request names no workspace or delivery id"}, status_code=400)
        try:
            new = await writer.accept(
                delivery_id=delivery_id, platform=SLACK, workspace_id=workspace_id, kind=kind, payload=payload
            )
        except Exception:  # the database is unavailable: nothing recorded, Slack retries later
            log.exception("slack request not recorded", kind=kind)
            REQUESTS.labels(SLACK, kind, "unavailable").inc()
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        REQUESTS.labels(SLACK, kind, "accepted" if new else "duplicate").inc()
        if new:
            worker.wake()
        elif retry:
            log.info("slack retry of a recorded request", kind=kind, delivery=delivery_id, retry=retry)
        return Response(status_code=200)

    @app.post("/slack/events")
    async def slack_events(request: Request) -> Response:
        body = await verified_body(request)
        if body is None:
            return _unauthorized("slack.event")
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        if payload.get("type") == "url_verification":
            return JSONResponse({"challenge": payload.get("challenge", "")})
        if payload.get("type") != "event_callback":
            return Response(status_code=200)
        return await record(
            "slack.event",
            str(payload.get("team_id") or ""),
            str(payload.get("event_id") or ""),
            payload,
            request.headers.get("X-Slack-Retry-Num"),
        )

    def form_of(body: bytes) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    @app.post("/slack/commands")
    async def slack_commands(request: Request) -> Response:
        body = await verified_body(request)
        if body is None:
            return _unauthorized("slack.command")
        form = form_of(body)
        return await record(
            "slack.command",
            form.get("team_id", ""),
            form.get("trigger_id", ""),
            form,
            request.headers.get("X-Slack-Retry-Num"),
        )

    @app.post("/slack/interactivity")
    async def slack_interactivity(request: Request) -> Response:
        body = await verified_body(request)
        if body is None:
            return _unauthorized("slack.interaction")
        try:
            payload = json.loads(form_of(body).get("payload", ""))
        except ValueError:
            return JSONResponse({"error": "the payload is not JSON"}, status_code=400)
        team = str((payload.get("team") or {}).get("id") or (payload.get("user") or {}).get("team_id") or "")
        actions = payload.get("actions") or [{}]
        user = (payload.get("user") or {}).get("id", "")
        delivery = payload.get("trigger_id") or f"{user}:{actions[0].get('action_ts', '')}"
        return await record("slack.interaction", team, str(delivery), payload, request.headers.get("X-Slack-Retry-Num"))

    @app.get("/slack/oauth/callback")
    async def slack_oauth_callback(code: str = "", state: str = "", error: str = "") -> HTMLResponse:
        if error:
            return HTMLResponse(f"<p>Slack did not install casem: {error}.</p>", status_code=400)
        secret = settings.state_secret or settings.slack_signing_secret
        if not secret or not settings.slack_client_id or not settings.slack_client_secret:
            return HTMLResponse("<p>Slack installs are not configured on this server.</p>", status_code=503)
        try:
            org_id, user_id = oauth.read_state(secret, state)
            answer = await api.oauth_v2_access(
                settings.slack_client_id, settings.slack_client_secret, code, settings.slack_redirect_uri
            )
            async with ctx.uow() as uow:
                found = await oauth.complete_install(uow, box, org_id, user_id, answer, None)
                await uow.commit()
        except DomainError as exc:
            return HTMLResponse(
                f"<p>casem could not finish the install: {getattr(exc, 'detail', exc)}</p>", status_code=400
            )
        except SlackApiError as exc:
            return HTMLResponse(f"<p>Slack refused the install: {exc.error}.</p>", status_code=400)
        return HTMLResponse(f"<p>casem is installed in {found.workspace_name or found.workspace_id}.</p>")

    @app.post("/teams/messages")
    async def teams_messages(request: Request) -> Response:
        if teams is None:
            return JSONResponse({"error": "the Teams bridge is not configured"}, status_code=503)
        return await teams.handle(request)

    return app
