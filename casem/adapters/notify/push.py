"""Push notifications as signed webhooks: casem POSTs a JSON body to the channel's URL (a push gateway or a
relay to a phone app) over the guarded HTTP client.

Headers: `X-Casem-Timestamp` (Unix seconds), `X-Casem-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}"
with the channel's signing secret>`, and `Idempotency-Key`: a receiver that sees a key again has already been
told (a retried attempt whose first answer was lost), and must not notify the person twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from casem.adapters.http import AllowList, OutboundError, allow_list_from_env, guarded_client, raise_for_response

SIGNATURE_HEADER = "X-Casem-Signature"
TIMESTAMP_HEADER = "X-Casem-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(secret: str, timestamp: str, body: bytes, signed: str) -> bool:
    """What a receiver checks (casem's tests use it on their loopback receivers)."""
    return hmac.compare_digest(signature(secret, timestamp, body), signed)


class PushClient:
    def __init__(self, allow: AllowList | None = None, timeout: float = 10.0) -> None:
        self._client = guarded_client(allow if allow is not None else allow_list_from_env(), timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, secret: str, key: str, payload: dict[str, Any]) -> int:
        """POST the payload; the receiver's status. Raises OutboundError (its `transient` says whether to retry)."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
            IDEMPOTENCY_HEADER: key,
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except Exception as exc:
            raise OutboundError.from_exception(exc) from exc
        raise_for_response(response)
        return response.status_code
