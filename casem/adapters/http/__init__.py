"""Outbound HTTP for deliveries and integrations, guarded against server-side request forgery.

Use `guarded_client` (or `guarded_sync_client`) for every call to a URL a tenant or an operator
configured, `validate_destination` when such a URL is saved, and `OutboundError` for what gets
stored and shown: it carries the status and a reason casem wrote, never the receiver's body.
"""

from casem.adapters.http.errors import OutboundError, parse_retry_after, raise_for_response
from casem.adapters.http.policy import (
    ALLOW_ENV,
    BLOCKED_PORTS,
    AllowList,
    Destination,
    DestinationPolicy,
    DestinationRefused,
    Refusal,
    allow_list_from_env,
    classify_address,
    system_resolver,
    validate_destination,
)
from casem.adapters.http.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    GuardedAsyncTransport,
    GuardedTransport,
    guarded_client,
    guarded_sync_client,
)

__all__ = [
    "ALLOW_ENV",
    "BLOCKED_PORTS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "AllowList",
    "Destination",
    "DestinationPolicy",
    "DestinationRefused",
    "GuardedAsyncTransport",
    "GuardedTransport",
    "OutboundError",
    "Refusal",
    "allow_list_from_env",
    "classify_address",
    "guarded_client",
    "guarded_sync_client",
    "parse_retry_after",
    "raise_for_response",
    "system_resolver",
    "validate_destination",
]
