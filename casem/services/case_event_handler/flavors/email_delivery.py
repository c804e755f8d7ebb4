"""email-delivery: sends `email` deliveries over SMTP (settings smtp_host/smtp_port/smtp_from, or
CASEM_SMTP_HOST/CASEM_SMTP_PORT/CASEM_SMTP_FROM; optional smtp_starttls, smtp_username/smtp_password)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.notifications import EMAIL, Delivery
from casem.services.case_event_handler.deliveries import (
    DeliveryFailed,
    DeliveryFlavor,
    DeliveryRejected,
    http_timeout,
    setting,
)
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


def build_message(delivery: Delivery, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = delivery.target["email"]
    message["Subject"] = delivery.payload["subject"]
    message["Message-ID"] = make_msgid(idstring=delivery.id.replace("-", ""), domain="casem")
    # Lets a mail pipeline drop the duplicate of an at-least-once resend.
    message["X-Casem-Delivery"] = delivery.id
    message.set_content(delivery.payload["text"])
    return message


def _send(host: str, port: int, timeout: float, message: EmailMessage, services: HandlerServices) -> None:
    starttls = str(setting(services, "smtp_starttls", "CASEM_SMTP_STARTTLS", "false")).lower() in ("1", "true", "yes")
    username = setting(services, "smtp_username", "CASEM_SMTP_USERNAME")
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        if starttls:
            smtp.starttls()
        if username:
            smtp.login(username, setting(services, "smtp_password", "CASEM_SMTP_PASSWORD", ""))
        smtp.send_message(message)


@flavor
class EmailDelivery(DeliveryFlavor):
    name: ClassVar[str] = "email-delivery"
    channel: ClassVar[str] = EMAIL

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        host = setting(services, "smtp_host", "CASEM_SMTP_HOST")
        if not host:
            raise DeliveryRejected("no SMTP server configured (smtp_host / CASEM_SMTP_HOST)")
        port = int(setting(services, "smtp_port", "CASEM_SMTP_PORT", 25))
        sender = setting(services, "smtp_from", "CASEM_SMTP_FROM", "casem@localhost")
        message = build_message(delivery, sender)
        try:
            # smtplib blocks: run it off the event loop.
            await asyncio.to_thread(_send, host, port, http_timeout(services), message, services)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = DeliveryRejected if all(code >= 500 for code in codes) else DeliveryFailed
            raise error(f"recipients refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            error = DeliveryRejected if exc.smtp_code >= 500 else DeliveryFailed
            raise error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
