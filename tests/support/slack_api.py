"""A loopback Slack: the Web API methods casem calls, written from Slack's public method docs, and the request
signing Slack does for what it sends to an app.

Methods: chat.postMessage, chat.postEphemeral, chat.getPermalink, conversations.replies, users.info,
oauth.v2.access. Each checks its token (`not_authed` without one, `invalid_auth` for an unknown one) and
answers with the documented shape; errors are HTTP 200 with `{"ok": false, "error": ...}` (channel_not_found,
user_not_found, message_not_found, thread_not_found, invalid_code, code_already_used, bad_client_secret,
invalid_arguments...). `rate_limit(method, times, retry_after)` makes the next calls of a method answer as
Slack does when rate limited: HTTP 429, a Retry-After header and `{"ok": false, "error": "ratelimited"}`.
Messages posted are kept, so threads can be read back with conversations.replies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

BOT_ID = "B0CASEM"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends: X-Slack-Request-Timestamp and the v0 HMAC-SHA256 of `v0:{ts}:{body}`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class Workspace:
    team_id: str
    domain: str
    bot_token: str
    bot_user_id: str
    channels: set[str] = field(default_factory=set)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel -> messages


class SlackApi:
    """The loopback Web API. `url` is the base (…/api) to point casem at."""

    def __init__(self) -> None:
        self.workspaces: dict[str, Workspace] = {}  # by bot token
        self.calls: list[Call] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.oauth_apps: dict[str, str] = {}  # client id -> secret
        self.oauth_codes: dict[str, tuple[str, dict[str, Any]]] = {}  # code -> (client id, answer)
        self.used_codes: set[str] = set()
        self._limits: dict[str, list[float]] = {}
        self._clock = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- set-up ----------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def start(self) -> SlackApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_workspace(self, team_id: str, bot_token: str, bot_user_id: str = "U0BOT") -> Workspace:
        ws = Workspace(team_id, team_id.lower(), bot_token, bot_user_id)
        self.workspaces[bot_token] = ws
        return ws

    def add_user(self, ws: Workspace, user_id: str, name: str, email: str, confirmed: bool = True) -> None:
        ws.users[user_id] = {
            "id": user_id,
            "team_id": ws.team_id,
            "name": name.lower(),
            "deleted": False,
            "real_name": name,
            "is_bot": False,
            "is_email_confirmed": confirmed,
            "profile": {"real_name": name, "display_name": name, "email": email},
        }

    def say(self, ws: Workspace, channel: str, user: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        """A message someone said in Slack (what an event would then report)."""
        return self._store(ws, channel, {"type": "message", "user": user, "text": text}, thread_ts)

    def rate_limit(self, method: str, times: int = 1, retry_after: float = 1) -> None:
        self._limits[method] = [retry_after] * times

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for ws in self.workspaces.values()
            for ch, msgs in ws.messages.items()
            for m in msgs
            if m.get("bot_id") == BOT_ID and (channel is None or ch == channel)
        ]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # -- behaviour -------------------------------------------------------------------------------------
    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._clock):06d}"

    def _store(self, ws: Workspace, channel: str, message: dict[str, Any], thread_ts: str | None) -> dict[str, Any]:
        with self._lock:
            stored = {**message, "ts": self._ts()}
            if thread_ts:
                stored["thread_ts"] = thread_ts
            ws.channels.add(channel)
            ws.messages.setdefault(channel, []).append(stored)
            if thread_ts:
                for parent in ws.messages[channel]:
                    if parent["ts"] == thread_ts:
                        parent["thread_ts"] = thread_ts
                        parent["reply_count"] = parent.get("reply_count", 0) + 1
            return stored

    def _find(self, ws: Workspace, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in ws.messages.get(channel, []) if m["ts"] == ts), None)

    def handle(
        self, method: str, args: dict[str, Any], token: str | None, basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.calls.append(Call(method, args, token))
        limits = self._limits.get(method)
        if limits:
            retry_after = limits.pop(0)
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(int(retry_after))}
        if method == "oauth.v2.access":
            return 200, self._oauth(args, basic), {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        ws = self.workspaces.get(token)
        if ws is None:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        handler = {
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "conversations.replies": self._replies,
            "users.info": self._user_info,
        }.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        return 200, handler(ws, args), {}

    def _channel_ok(self, ws: Workspace, channel: Any) -> bool:
        return (
            isinstance(channel, str)
            and (channel in ws.channels or channel.startswith(("C", "G")))
            and channel != "C404"
        )

    def _post_message(self, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not self._channel_ok(ws, channel):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        message = {"type": "message", "user": ws.bot_user_id, "bot_id": BOT_ID, "text": args.get("text", "")}
        if args.get("blocks"):
            message["blocks"] = args["blocks"]
        if args.get("metadata"):
            message["metadata"] = args["metadata"]
        stored = self._store(ws, channel, message, args.get("thread_ts"))
        return {"ok": True, "channel": channel, "ts": stored["ts"], "message": stored}

    def _post_ephemeral(self, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        channel, user = args.get("channel"), args.get("user")
        if not self._channel_ok(ws, channel):
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._ts()
        self.ephemerals.append({**args, "message_ts": ts})
        return {"ok": True, "message_ts": ts}

    def _permalink(self, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("message_ts")
        if not self._channel_ok(ws, channel):
            return {"ok": False, "error": "channel_not_found"}
        found = self._find(ws, channel, ts) if ts else None
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        link = f"https://{ws.domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if found.get("thread_ts") and found["thread_ts"] != ts:
            link += f"?thread_ts={found['thread_ts']}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _replies(self, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = args.get("channel"), args.get("ts")
        if not self._channel_ok(ws, channel):
            return {"ok": False, "error": "channel_not_found"}
        if not ts or self._find(ws, channel, ts) is None:
            return {"ok": False, "error": "thread_not_found"}
        thread = [m for m in ws.messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        thread.sort(key=lambda m: float(m["ts"]))
        limit = max(1, min(int(args.get("limit") or 1000), 1000))
        start = int(base64.b64decode(args["cursor"]).decode().split(":")[1]) if args.get("cursor") else 0
        page = thread[start : start + limit]
        more = start + limit < len(thread)
        cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        return {"ok": True, "messages": page, "has_more": more, "response_metadata": {"next_cursor": cursor}}

    def _user_info(self, ws: Workspace, args: dict[str, Any]) -> dict[str, Any]:
        user = ws.users.get(str(args.get("user") or ""))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _oauth(self, args: dict[str, Any], basic: tuple[str, str] | None) -> dict[str, Any]:
        client_id, secret = basic or (args.get("client_id"), args.get("client_secret"))
        if not client_id or client_id not in self.oauth_apps:
            return {"ok": False, "error": "invalid_client_id"}
        if self.oauth_apps[client_id] != secret:
            return {"ok": False, "error": "bad_client_secret"}
        code = str(args.get("code") or "")
        if code in self.used_codes:
            return {"ok": False, "error": "code_already_used"}
        found = self.oauth_codes.get(code)
        if found is None or found[0] != client_id:
            return {"ok": False, "error": "invalid_code"}
        self.used_codes.add(code)
        return {"ok": True, **found[1]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parsed = urlparse(self.path)
                method = parsed.path.rsplit("/", 1)[-1]
                args: dict[str, Any] = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if raw and kind == "application/json":
                    args.update(json.loads(raw))
                elif raw:
                    args.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
                auth = self.headers.get("Authorization") or ""
                token = auth[7:] if auth.startswith("Bearer ") else args.pop("token", None)
                basic = None
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    basic = (user, password)
                status, body, headers = api.handle(method, args, token, basic)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve  # noqa: N815 - http.server hook names
            do_POST = _serve  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@contextmanager
def running_slack() -> Iterator[SlackApi]:
    api = SlackApi().start()
    try:
        yield api
    finally:
        api.stop()
