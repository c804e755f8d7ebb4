"""A loopback Bot Framework: the two endpoints casem calls to post into Teams, written from their public docs.

- `POST /botframework.com/oauth2/v2.0/token` (the bots' token endpoint): form-encoded
  `grant_type=client_credentials`, `client_id`, `client_secret`, `scope`; answers
  `{"token_type": "Bearer", "expires_in": ..., "ext_expires_in": ..., "access_token": ...}`, or 400/401 with an
  OAuth error (`unsupported_grant_type`, `invalid_scope`, `invalid_client`).
- `POST {serviceUrl}/v3/conversations/{conversationId}/activities` (the service URL is `service_url`, under
  `/amer/`): needs `Authorization: Bearer <a token it issued>` (401 otherwise), a JSON activity (400 otherwise);
  answers 201 `{"id": ...}` and keeps the activity by its (URL-decoded) conversation id.
  `throttle(times, retry_after)` makes the next activities answer 429 with a Retry-After header.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

TOKEN_PATH = "/botframework.com/oauth2/v2.0/token"
SCOPE = "https://api.botframework.com/.default"
SERVICE_PREFIX = "/amer"


@dataclass
class Posted:
    conversation_id: str
    activity: dict[str, Any]
    id: str


class BotFramework:
    def __init__(self, app_id: str, app_password: str, *, expires_in: int = 3599) -> None:
        self.app_id = app_id
        self.app_password = app_password
        self.expires_in = expires_in
        self.tokens_issued: list[str] = []
        self.posted: list[Posted] = []
        self.refused: list[int] = []  # statuses of activities answered with an error
        self._throttle: list[float] = []
        self._ids = itertools.count(1_700_000_000_001)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return self.base + TOKEN_PATH

    @property
    def service_url(self) -> str:
        """What Teams sends as an activity's serviceUrl (with its trailing slash)."""
        return f"{self.base}{SERVICE_PREFIX}/"

    def throttle(self, times: int = 1, retry_after: float = 1) -> None:
        with self._lock:
            self._throttle = [retry_after] * times

    def start(self) -> BotFramework:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the endpoints -----------------------------------------------------------------------------------
    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        def one(name: str) -> str:
            return (form.get(name) or [""])[0]

        if one("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}, {}
        if one("scope") != SCOPE:
            return 400, {"error": "invalid_scope"}, {}
        if one("client_id") != self.app_id or one("client_secret") != self.app_password:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"}, {}
        token = f"eyJ0eXAiOiJKV1Qi.{uuid.uuid4().hex}.sig"
        with self._lock:
            self.tokens_issued.append(token)
        answer = {"token_type": "Bearer", "expires_in": self.expires_in, "ext_expires_in": self.expires_in}
        return 200, {**answer, "access_token": token}, {}

    def _activity(
        self, conversation_id: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            if scheme != "Bearer" or token not in self.tokens_issued:
                self.refused.append(401)
                return 401, {"message": "Authorization has been denied for this request."}, {}
            if self._throttle:
                retry_after = self._throttle.pop(0)
                self.refused.append(429)
                return (
                    429,
                    {"error": {"code": "Throttled", "message": "slow down"}},
                    {"Retry-After": f"{retry_after:g}"},
                )
        try:
            activity = json.loads(body)
        except ValueError:
            return 400, {"error": {"code": "BadArgument", "message": "not JSON"}}, {}
        if not isinstance(activity, dict) or activity.get("type") != "message":
            return 400, {"error": {"code": "BadArgument", "message": "not a message activity"}}, {}
        posted = Posted(conversation_id, activity, str(next(self._ids)))
        with self._lock:
            self.posted.append(posted)
        return 201, {"id": posted.id}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlparse(self.path).path
                parts = path.split("/")
                if path == TOKEN_PATH:
                    if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                        status, answer, headers = 400, {"error": "invalid_request"}, {}
                    else:
                        status, answer, headers = api._token(parse_qs(body.decode()))
                elif (
                    path.startswith(SERVICE_PREFIX + "/v3/conversations/")
                    and len(parts) == 6
                    and parts[5] == "activities"
                ):
                    conversation = unquote(parts[4])
                    status, answer, headers = api._activity(conversation, self.headers.get("Authorization", ""), body)
                else:
                    status, answer, headers = 404, {"error": {"code": "NotFound"}}, {}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


@contextmanager
def running_bot_framework(app_id: str, app_password: str, **kwargs: Any) -> Iterator[BotFramework]:
    api = BotFramework(app_id, app_password, **kwargs).start()
    try:
        yield api
    finally:
        api.stop()
