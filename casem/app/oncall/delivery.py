"""How a notification reaches a person: the provider port, and casem's senders behind it (SMTP email, SMS and voice
through a Twilio-compatible API, push as a signed webhook).

Sending is at least once; what makes it once is the idempotency key every notification carries:
- email carries it in its Message-ID (`<key-digest@casem>`) and `X-Casem-Idempotency-Key`, so a mail pipeline drops a
  resend of an attempt whose outcome was lost;
- push carries it as `Idempotency-Key`, which casem's webhook contract asks receivers to honour;
- SMS carries a short reference to it in the text, and before resending an attempt whose outcome was lost the
  sender asks Twilio's Messages list whether that text already went out; a call is looked up the same way (a call
  to the number placed since the lost attempt counts as it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

from casem.adapters.http import AllowList, OutboundError, allow_list_from_env
from casem.adapters.notify.push import PushClient
from casem.adapters.notify.smtp import SmtpFailed, SmtpRejected, SmtpSettings, send_email
from casem.adapters.notify.twilio import TwilioClient, TwilioError, TwilioSettings, created_at
from casem.domain.oncall import EMAIL, PUSH, SMS, VOICE


class DeliveryError(Exception):
    def __init__(self, detail: str, *, transient: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient


@dataclass(frozen=True)
class Outgoing:
    key: str
    medium: str
    destination: str  # an email address, a phone number, or the push webhook URL
    subject: str
    text: str
    secret: str | None = None  # push: the channel's signing secret
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """A short, stable reference to the idempotency key (it rides along in SMS text)."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:10]


class Notifier(Protocol):
    async def send(self, outgoing: Outgoing) -> str:
        """Send; the provider's reference. Raises DeliveryError."""
        ...

    async def already_sent(self, outgoing: Outgoing, attempted_at: datetime) -> str | None:
        """Whether an attempt made at `attempted_at`, whose outcome was lost, went out (its reference)."""
        ...


def email_message(outgoing: Outgoing, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = outgoing.destination
    message["Subject"] = outgoing.subject
    message["Message-ID"] = f"<{hashlib.sha256(outgoing.key.encode()).hexdigest()[:32]}@casem>"
    message["X-Casem-Idempotency-Key"] = outgoing.key
    message.set_content(outgoing.text)
    return message


def sms_text(outgoing: Outgoing) -> str:
    return f"{outgoing.text} [ref {outgoing.reference}]"


class Senders:
    """casem's notifier: each medium through its adapter, configured from the environment unless given."""

    def __init__(
        self,
        smtp: SmtpSettings | None = None,
        twilio: TwilioSettings | None = None,
        push: PushClient | None = None,
        env: Mapping[str, str] | None = None,
        allow: AllowList | None = None,
    ) -> None:
        """`allow`: destinations beyond public addresses (default: the operator's CASEM_OUTBOUND_ALLOW)."""
        allow = allow if allow is not None else allow_list_from_env(env)
        self.smtp = smtp or SmtpSettings.from_env(env)
        settings = twilio or TwilioSettings.from_env(env)
        self.twilio = TwilioClient(settings, allow) if settings is not None else None
        self.push = push or PushClient(allow)

    async def close(self) -> None:
        if self.twilio is not None:
            await self.twilio.close()
        await self.push.close()

    def _twilio(self) -> TwilioClient:
        if self.twilio is None:
            raise DeliveryError("no SMS/voice provider configured (CASEM_TWILIO_ACCOUNT_SID)", transient=False)
        return self.twilio

    async def send(self, outgoing: Outgoing) -> str:
        try:
            if outgoing.medium == EMAIL:
                await send_email(self.smtp, email_message(outgoing, self.smtp.sender))
                return "smtp"
            if outgoing.medium == SMS:
                return (await self._twilio().send_sms(outgoing.destination, sms_text(outgoing))).sid
            if outgoing.medium == VOICE:
                return (await self._twilio().call(outgoing.destination, outgoing.text)).sid
            if outgoing.medium == PUSH:
                assert outgoing.secret is not None
                status = await self.push.send(outgoing.destination, outgoing.secret, outgoing.key, outgoing.payload)
                return f"http-{status}"
        except SmtpRejected as exc:
            raise DeliveryError(str(exc), transient=False) from exc
        except SmtpFailed as exc:
            raise DeliveryError(str(exc), transient=True) from exc
        except TwilioError as exc:
            raise DeliveryError(str(exc), transient=exc.transient) from exc
        except OutboundError as exc:
            raise DeliveryError(exc.reason, transient=exc.transient) from exc
        raise DeliveryError(f"unknown medium {outgoing.medium!r}", transient=False)

    async def already_sent(self, outgoing: Outgoing, attempted_at: datetime) -> str | None:
        if outgoing.medium not in (SMS, VOICE) or self.twilio is None:
            return None  # email and push are resent with the same key, which receivers honour
        since = attempted_at - timedelta(seconds=1)
        try:
            if outgoing.medium == SMS:
                found = await self.twilio.messages_to(outgoing.destination, since)
                text = sms_text(outgoing)
                matches = [m for m in found if m.get("body") == text]
            else:
                found = await self.twilio.calls_to(outgoing.destination, since)
                matches = [c for c in found if (created_at(c) or since) >= since]
        except TwilioError as exc:
            raise DeliveryError(f"could not check an earlier attempt: {exc}", transient=True) from exc
        return str(matches[0]["sid"]) if matches else None
