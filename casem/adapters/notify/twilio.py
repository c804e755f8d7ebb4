"""SMS and voice calls through a Twilio-compatible REST API (the 2010-04-01 Messages and Calls resources), over
the guarded HTTP client.

    POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json   To, From, Body            → 201 {sid, status, ...}
    POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json      To, From, Twiml           → 201 {sid, status, ...}
    GET  {base}/2010-04-01/Accounts/{AccountSid}/Messages.json?To=&DateSent>=   → {messages: [...]}
    GET  {base}/2010-04-01/Accounts/{AccountSid}/Calls.json?To=&StartTime>=     → {calls: [...]}

Form-encoded bodies, HTTP basic auth (Account SID : Auth Token). An error answers {code, message, more_info,
status}: 429 and 5xx are worth retrying, other 4xx are not. The list calls let a sender that lost track of an
attempt (its process died between Twilio's answer and recording it) find out whether it went out.

Settings: CASEM_TWILIO_API_URL (default https://api.twilio.com), CASEM_TWILIO_ACCOUNT_SID,
CASEM_TWILIO_AUTH_TOKEN, CASEM_TWILIO_FROM; the operator's CASEM_OUTBOUND_ALLOW lets a private address through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape

from casem.adapters.http import AllowList, OutboundError, allow_list_from_env, guarded_client

DEFAULT_API_URL = "https://api.twilio.com"
API_VERSION = "2010-04-01"


class TwilioError(Exception):
    """A refused or failed call: `transient` when retrying may help (429, 5xx, network)."""

    def __init__(self, detail: str, *, status: int | None, code: int | None, transient: bool) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class TwilioSettings:
    api_url: str
    account_sid: str
    auth_token: str
    from_number: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TwilioSettings | None:
        """None when no account is configured (SMS and voice notifications then fail as not configured)."""
        env = os.environ if env is None else env
        sid, token = env.get("CASEM_TWILIO_ACCOUNT_SID"), env.get("CASEM_TWILIO_AUTH_TOKEN")
        if not sid or not token:
            return None
        return cls(
            api_url=env.get("CASEM_TWILIO_API_URL", DEFAULT_API_URL).rstrip("/"),
            account_sid=sid,
            auth_token=token,
            from_number=env.get("CASEM_TWILIO_FROM", ""),
        )


@dataclass(frozen=True)
class Sent:
    sid: str
    status: str


def voice_twiml(text: str) -> str:
    """The spoken message of a call, as TwiML."""
    return f"<Response><Say>{escape(text)}</Say></Response>"


class TwilioClient:
    def __init__(self, settings: TwilioSettings, allow: AllowList | None = None, timeout: float = 10.0) -> None:
        self.settings = settings
        self._client = guarded_client(
            allow if allow is not None else allow_list_from_env(),
            base_url=f"{settings.api_url}/{API_VERSION}/Accounts/{settings.account_sid}",
            auth=(settings.account_sid, settings.auth_token),
            timeout=timeout,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._client.request(method, path, **kwargs)
        except Exception as exc:
            error = OutboundError.from_exception(exc)
            raise TwilioError(error.reason, status=None, code=None, transient=error.transient) from exc
        if response.status_code < 300:
            return response.json()  # type: ignore[no-any-return]
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("code") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        transient = response.status_code == 429 or response.status_code >= 500
        detail = f"HTTP {response.status_code}" + (f" (Twilio error {code}: {message})" if code else "")
        raise TwilioError(detail, status=response.status_code, code=code, transient=transient)

    async def send_sms(self, to: str, body: str) -> Sent:
        answer = await self._call(
            "POST", "/Messages.json", data={"To": to, "From": self.settings.from_number, "Body": body}
        )
        return Sent(answer["sid"], answer.get("status", ""))

    async def call(self, to: str, text: str) -> Sent:
        answer = await self._call(
            "POST", "/Calls.json", data={"To": to, "From": self.settings.from_number, "Twiml": voice_twiml(text)}
        )
        return Sent(answer["sid"], answer.get("status", ""))

    async def messages_to(self, to: str, since: datetime) -> list[dict[str, Any]]:
        """Messages sent to `to` on or after the day of `since` (Twilio filters by date)."""
        answer = await self._call(
            "GET", "/Messages.json", params={"To": to, "DateSent>": since.date().isoformat(), "PageSize": 100}
        )
        return list(answer.get("messages") or [])

    async def calls_to(self, to: str, since: datetime) -> list[dict[str, Any]]:
        answer = await self._call(
            "GET", "/Calls.json", params={"To": to, "StartTime>": since.date().isoformat(), "PageSize": 100}
        )
        return list(answer.get("calls") or [])


def created_at(resource: Mapping[str, Any]) -> datetime | None:
    """A resource's `date_created` (RFC 2822, as Twilio writes it)."""
    value = resource.get("date_created")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


__all__ = ["Sent", "TwilioClient", "TwilioError", "TwilioSettings", "created_at", "voice_twiml"]
