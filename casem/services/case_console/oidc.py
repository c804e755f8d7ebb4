"""OpenID Connect sign-in (authorization code flow with PKCE), for operators with an identity provider.

Configured by CASEM_OIDC_ISSUER, CASEM_OIDC_CLIENT_ID and CASEM_OIDC_CLIENT_SECRET (CASEM_OIDC_NAME names
the button). The provider's discovery document, token endpoint and keys are fetched through casem's guarded
HTTP client: a provider on an internal address must be listed in CASEM_OUTBOUND_ALLOW like any other internal
destination. The ID token is checked for its signature (the provider's JWKS), issuer, audience, expiry and
the nonce this browser was given; the person then signs in to the account bound to the token's subject, or
to the one account whose e-mail the provider says is verified (see casem.app.console.accounts).

authlib builds the PKCE challenge and the authorization URL and joserfc (authlib's JOSE successor) checks the
ID token; the token request goes through the guarded httpx client itself, because authlib's httpx
integration is deprecated in favour of httpx2, which our guarded transport is not written for.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from casem.adapters.http import DestinationPolicy, allow_list_from_env, guarded_client
from casem.app.console import accounts, sessions
from casem.app.console.accounts import SignInFailed
from casem.services.case_console.web import context_of, is_secure, render, safe_next, set_session_cookie

STATE_COOKIE = "casem_oidc"
STATE_TTL_SECONDS = 600
DISCOVERY_TTL_SECONDS = 3600


class OidcError(Exception):
    pass


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    display_name: str = "your identity provider"
    policy: DestinationPolicy = field(default_factory=lambda: DestinationPolicy(allow=allow_list_from_env()))
    _metadata: dict[str, Any] | None = None
    _metadata_at: float = 0.0

    def authorization_url(self, endpoint: str, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        return add_params_to_uri(
            endpoint,
            [
                ("response_type", "code"),
                ("client_id", self.client_id),
                ("redirect_uri", redirect_uri),
                ("scope", "openid email profile"),
                ("state", state),
                ("nonce", nonce),
                ("code_challenge", create_s256_code_challenge(verifier)),
                ("code_challenge_method", "S256"),
            ],
        )

    async def exchange_code(self, endpoint: str, redirect_uri: str, code: str, verifier: str) -> dict[str, Any]:
        """The token request, authenticated with client_secret_basic (the OpenID Connect default)."""
        async with guarded_client(policy=self.policy, timeout=10.0) as client:
            response = await client.post(
                endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                },
                auth=httpx.BasicAuth(self.client_id, self.client_secret),
                headers={"Accept": "application/json"},
            )
        if response.status_code != 200:
            raise OidcError(f"the token endpoint answered {response.status_code}")
        found = response.json()
        if not isinstance(found, dict) or not isinstance(found.get("id_token"), str):
            raise OidcError("the token endpoint's answer has no ID token")
        return found

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_TTL_SECONDS:
            async with guarded_client(policy=self.policy) as client:
                response = await client.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
                response.raise_for_status()
                found = response.json()
            if found.get("issuer") != self.issuer:
                raise OidcError("the provider's discovery document names another issuer")
            self._metadata, self._metadata_at = found, time.monotonic()
        return self._metadata

    async def keys(self) -> Any:
        meta = await self.metadata()
        async with guarded_client(policy=self.policy) as client:
            response = await client.get(meta["jwks_uri"])
            response.raise_for_status()
            return KeySet.import_key_set(response.json())


def oidc_from_env(env: dict[str, str] | None = None) -> OidcProvider | None:
    env = dict(os.environ) if env is None else env
    issuer = env.get("CASEM_OIDC_ISSUER")
    if not issuer:
        return None
    client_id, secret = env.get("CASEM_OIDC_CLIENT_ID"), env.get("CASEM_OIDC_CLIENT_SECRET")
    if not client_id or not secret:
        raise ValueError("CASEM_OIDC_ISSUER is set: set CASEM_OIDC_CLIENT_ID and CASEM_OIDC_CLIENT_SECRET too")
    return OidcProvider(issuer, client_id, secret, env.get("CASEM_OIDC_NAME") or "your identity provider")


router = APIRouter()


def _redirect_uri(request: Request) -> str:
    return str(request.url_for("oidc_callback"))


def _failed(request: Request, detail: str) -> Response:
    return render(request, "error.html", 401, title="Sign-in failed", detail=detail)


@router.get("/sign-in/oidc")
async def oidc_start(request: Request, next: str = "") -> Response:
    provider: OidcProvider | None = request.app.state.oidc
    if provider is None:
        return _failed(request, "This console has no identity provider configured.")
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
    meta = await provider.metadata()
    url = provider.authorization_url(meta["authorization_endpoint"], _redirect_uri(request), state, nonce, verifier)
    response = RedirectResponse(url, status_code=303)
    # Lax: the provider sends the browser back with a top-level GET, which carries Lax cookies.
    response.set_cookie(
        STATE_COOKIE,
        "|".join([state, nonce, verifier, safe_next(next)]),
        max_age=STATE_TTL_SECONDS,
        path="/sign-in/oidc",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/sign-in/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, code: str = "", state: str = "") -> Response:
    provider: OidcProvider | None = request.app.state.oidc
    saved = request.cookies.get(STATE_COOKIE, "").split("|")
    if provider is None or len(saved) != 4 or not code or not state or state != saved[0]:
        return _failed(request, "The sign-in did not come back as it was sent. Start again from the sign-in page.")
    _state, nonce, verifier, next_ = saved
    try:
        meta = await provider.metadata()
        token = await provider.exchange_code(meta["token_endpoint"], _redirect_uri(request), code, verifier)
        decoded = jwt.decode(token["id_token"], await provider.keys(), algorithms=["RS256", "ES256", "PS256", "EdDSA"])
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(decoded.claims)
        claims = decoded.claims
    except (JoseError, OidcError, httpx.HTTPError, KeyError, ValueError) as exc:
        return _failed(request, f"The identity provider's answer could not be verified ({type(exc).__name__}).")
    ctx = context_of(request)
    try:
        async with ctx.uow() as uow:
            account = await accounts.account_for_identity(
                uow, str(claims["sub"]), claims.get("email"), bool(claims.get("email_verified"))
            )
            token_value, _session = await sessions.start_session(uow, account, request.headers.get("user-agent"))
            await accounts.stamp_sign_in(uow, account.id)
            await uow.commit()
    except SignInFailed:
        return _failed(request, "Your identity provider signed you in, but no casem account matches you. Ask an admin.")
    response = RedirectResponse(next_, status_code=303)
    set_session_cookie(request, response, token_value)
    response.delete_cookie(STATE_COOKIE, path="/sign-in/oidc")
    return response
