"""The bridges' configuration, from the environment (secrets from the mounted secrets, never logged)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casem.adapters.chat.slack_web import DEFAULT_SLACK_API_URL

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"


@dataclass(frozen=True)
class BridgeSettings:
    slack_signing_secret: str | None = None  # CASEM_SLACK_SIGNING_SECRET: without it Slack requests are refused
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_redirect_uri: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_scopes: str = "commands,chat:write,channels:history,groups:history,users:read,users:read.email"
    teams_app_id: str | None = None  # the bot's Microsoft App ID: the audience of Bot Framework tokens
    teams_issuer: str = BOT_FRAMEWORK_ISSUER
    # The signing keys Bot Framework tokens are checked against (a JWKS document): configured, not fetched.
    teams_jwks: dict[str, Any] = field(default_factory=dict)
    app_url: str = "http://localhost:8080"
    state_secret: str | None = None  # signs the OAuth install state; defaults to the signing secret

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BridgeSettings:
        env = os.environ if env is None else env
        jwks: dict[str, Any] = {}
        raw = env.get("CASEM_TEAMS_JWKS")
        if raw:
            jwks = json.loads(Path(raw).read_text() if not raw.lstrip().startswith("{") else raw)
        return cls(
            slack_signing_secret=env.get("CASEM_SLACK_SIGNING_SECRET") or None,
            slack_client_id=env.get("CASEM_SLACK_CLIENT_ID") or None,
            slack_client_secret=env.get("CASEM_SLACK_CLIENT_SECRET") or None,
            slack_redirect_uri=env.get("CASEM_SLACK_REDIRECT_URI") or None,
            slack_api_url=env.get("CASEM_SLACK_API_URL") or DEFAULT_SLACK_API_URL,
            teams_app_id=env.get("CASEM_TEAMS_APP_ID") or None,
            teams_issuer=env.get("CASEM_TEAMS_ISSUER") or BOT_FRAMEWORK_ISSUER,
            teams_jwks=jwks,
            app_url=env.get("CASEM_APP_URL") or "http://localhost:8080",
            state_secret=env.get("CASEM_SLACK_STATE_SECRET") or None,
        )
