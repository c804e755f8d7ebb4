"""email-delivery: sends `email` deliveries over SMTP (settings smtp_host/smtp_port/smtp_from, or
CASEM_SMTP_HOST/CASEM_SMTP_PORT/CASEM_SMTP_FROM; optional smtp_starttls, smtp_username/smtp_password)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import ClassVar

from casem.adapters.notify.smtp import SmtpFailed, SmtpRejected, SmtpSettings, send_email
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


@flavor
class EmailDelivery(DeliveryFlavor):
    name: ClassVar[str] = "email-delivery"
    channel: ClassVar[str] = EMAIL

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        settings = SmtpSettings(
            host=setting(services, "smtp_host", "CASEM_SMTP_HOST"),
            port=int(setting(services, "smtp_port", "CASEM_SMTP_PORT", 25)),
            sender=setting(services, "smtp_from", "CASEM_SMTP_FROM", "casem@localhost"),
            starttls=str(setting(services, "smtp_starttls", "CASEM_SMTP_STARTTLS", "false")).lower()
            in ("1", "true", "yes"),
            username=setting(services, "smtp_username", "CASEM_SMTP_USERNAME"),
            password=setting(services, "smtp_password", "CASEM_SMTP_PASSWORD", ""),
            timeout=http_timeout(services),
        )
        if not settings.host:
            raise DeliveryRejected("no SMTP server configured (smtp_host / CASEM_SMTP_HOST)")
        try:
            await send_email(settings, build_message(delivery, settings.sender))
        except SmtpRejected as exc:
            raise DeliveryRejected(str(exc)) from exc
        except SmtpFailed as exc:
            raise DeliveryFailed(str(exc)) from exc
