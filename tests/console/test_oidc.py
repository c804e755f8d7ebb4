"""OpenID Connect sign-in against a loopback identity provider that implements the protocol's documented
contract (discovery, authorization code with PKCE, token endpoint with client authentication, JWKS, RS256
ID tokens with a nonce): no part of casem is mocked."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Form, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey

from casem.adapters.http import DestinationPolicy, allow_list_from_env
from casem.services.case_console.oidc import OidcProvider
from tests.console.server import ConsoleServer
from tests.support.databases import tenant_endpoints

CLIENT_ID, CLIENT_SECRET = "casem-console", "s3cret-" + uuid.uuid4().hex


class IdentityProvider:
    """Signs in whoever `next_user` names (subject, e-mail, verified) at the authorization endpoint."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
        self.codes: dict[str, dict[str, Any]] = {}
        self.next_user: dict[str, Any] = {}
        self.app = FastAPI()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self._routes()

    @property
    def issuer(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def _routes(self) -> None:
        app = self.app

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            assert q["client_id"] == CLIENT_ID and q["response_type"] == "code" and q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"challenge": q["code_challenge"], "nonce": q["nonce"], "redirect": q["redirect_uri"]}
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

        @app.post("/token")
        async def token(
            grant_type: str = Form(...),
            code: str = Form(...),
            code_verifier: str = Form(...),
            redirect_uri: str = Form(...),
            authorization: str = Header(""),
        ) -> JSONResponse:
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            grant = self.codes.pop(code, None)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
            if authorization != expected or grant is None or grant["challenge"] != challenge:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            assert grant_type == "authorization_code" and redirect_uri == grant["redirect"]
            now = int(time.time())
            claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant["nonce"]}
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, {**claims, **self.next_user}, self.key)
            return JSONResponse({"access_token": "at", "token_type": "Bearer", "id_token": id_token, "expires_in": 300})

    def start(self) -> IdentityProvider:
        threading.Thread(target=self.server.run, daemon=True).start()
        while not self.server.started:
            time.sleep(0.02)
        return self


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider().start()
    yield provider
    provider.server.should_exit = True


@pytest.fixture(scope="module")
def console_with_oidc(idp: IdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    workdir: Path = tmp_path_factory.mktemp("console-oidc")
    # The provider is on loopback: the operator lists it, as they would an internal IdP.
    policy = DestinationPolicy(allow=allow_list_from_env({"CASEM_OUTBOUND_ALLOW": "127.0.0.1"}))
    provider = OidcProvider(idp.issuer, CLIENT_ID, CLIENT_SECRET, "Test IdP", policy=policy)
    with tenant_endpoints("sqlite", workdir) as endpoints:
        server = ConsoleServer(endpoints, workdir, oidc=provider).start()
        yield server
        server.stop()


def test_oidc_signs_in_the_user_with_that_verified_email(
    idp: IdentityProvider, console_with_oidc: ConsoleServer
) -> None:
    world = console_with_oidc.new_world()
    idp.next_user = {"sub": "idp-" + uuid.uuid4().hex, "email": world.person.email, "email_verified": True}
    with httpx.Client(base_url=console_with_oidc.url, follow_redirects=True, timeout=30) as browser:
        assert "Sign in with Test IdP" in browser.get("/sign-in").text
        landed = browser.get("/sign-in/oidc?next=/board")
        assert landed.status_code == 200 and str(landed.url).endswith("/board"), landed.text
        assert "<h1>Board" in landed.text
    # The subject is bound now: the next sign-in finds the account by it even if the e-mail changed at the IdP.
    idp.next_user = {**idp.next_user, "email": "changed@example.com", "email_verified": True}
    with httpx.Client(base_url=console_with_oidc.url, follow_redirects=True, timeout=30) as browser:
        assert str(browser.get("/sign-in/oidc").url).endswith("/cases")


def test_oidc_refuses_unverified_or_unknown_people(idp: IdentityProvider, console_with_oidc: ConsoleServer) -> None:
    world = console_with_oidc.new_world()
    for user in (
        {"sub": "idp-" + uuid.uuid4().hex, "email": world.person.email, "email_verified": False},
        {"sub": "idp-" + uuid.uuid4().hex, "email": "stranger@example.com", "email_verified": True},
    ):
        idp.next_user = user
        with httpx.Client(base_url=console_with_oidc.url, follow_redirects=True, timeout=30) as browser:
            answer = browser.get("/sign-in/oidc")
            assert answer.status_code == 401 and "no casem account matches you" in answer.text
            assert browser.get("/cases").url.path == "/sign-in"


def test_a_callback_without_the_state_this_browser_was_given_is_refused(console_with_oidc: ConsoleServer) -> None:
    with httpx.Client(base_url=console_with_oidc.url, follow_redirects=False, timeout=30) as browser:
        answer = browser.get("/sign-in/oidc/callback?code=abc&state=forged")
        assert answer.status_code == 401 and "did not come back as it was sent" in answer.text
