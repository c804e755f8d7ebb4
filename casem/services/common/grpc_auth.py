"""How gRPC callers present Datadog-style keys: the dd-api-key and dd-application-key metadata."""

from __future__ import annotations

import grpc

from casem.app.auth import AuthenticationFailed

API_KEY_METADATA = "dd-api-key"
APP_KEY_METADATA = "dd-application-key"


class MissingCredentials(AuthenticationFailed):
    """No dd-api-key / dd-application-key metadata at all (UNAUTHENTICATED, not PERMISSION_DENIED)."""


def invocation_metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {key: value for key, value in (context.invocation_metadata() or ())}


def key_pair(metadata: dict[str, str]) -> tuple[str, str]:
    """The caller's (API key, application key), or MissingCredentials naming what to send."""
    api_key, app_key = metadata.get(API_KEY_METADATA), metadata.get(APP_KEY_METADATA)
    if not api_key or not app_key:
        raise MissingCredentials(f"send the {API_KEY_METADATA} and {APP_KEY_METADATA} metadata")
    return api_key, app_key
