"""Email over SMTP: the one sending code the email-delivery flavor and on-call notifications share.

Settings: CASEM_SMTP_HOST / CASEM_SMTP_PORT / CASEM_SMTP_FROM, optional CASEM_SMTP_STARTTLS and
CASEM_SMTP_USERNAME / CASEM_SMTP_PASSWORD (callers may pass their own values instead of the environment).
"""

from __future__ import annotations

import asyncio
import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage


class SmtpRejected(Exception):
    """The server refused the message for good (5xx, every recipient refused)."""


class SmtpFailed(Exception):
    """A transient failure (4xx, connection trouble): try again later."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int = 25
    sender: str = "casem@localhost"
    starttls: bool = False
    username: str | None = None
    password: str = ""
    timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpSettings:
        env = os.environ if env is None else env
        return cls(
            host=env.get("CASEM_SMTP_HOST") or None,
            port=int(env.get("CASEM_SMTP_PORT", 25)),
            sender=env.get("CASEM_SMTP_FROM", "casem@localhost"),
            starttls=env.get("CASEM_SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
            username=env.get("CASEM_SMTP_USERNAME") or None,
            password=env.get("CASEM_SMTP_PASSWORD", ""),
        )


def _send(settings: SmtpSettings, message: EmailMessage) -> None:
    assert settings.host is not None
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)


async def send_email(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message (smtplib blocks: off the event loop). Raises SmtpRejected or SmtpFailed."""
    if not settings.host:
        raise SmtpRejected("no SMTP server configured (CASEM_SMTP_HOST)")
    try:
        await asyncio.to_thread(_send, settings, message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        error = SmtpRejected if all(code >= 500 for code in codes) else SmtpFailed
        raise error(f"recipients refused: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        error = SmtpRejected if exc.smtp_code >= 500 else SmtpFailed
        raise error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SmtpFailed(f"{type(exc).__name__}: {exc}") from exc
