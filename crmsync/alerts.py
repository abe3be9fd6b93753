"""Alerts for syncs that failed for good: an ERROR log line always, an email when SMTP is set."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

from .config import SmtpConfig

logger = logging.getLogger(__name__)


class Alerter:
    """Raises alerts without ever blocking or failing the caller."""

    def __init__(self, smtp: SmtpConfig | None) -> None:
        self._smtp = smtp
        self._sending: set[asyncio.Task[None]] = set()

    def sync_failed(self, subject_kind: str, subject_id: str, email: str | None, error: str) -> None:
        """Report a record whose sync will not be retried without a person."""
        facts = {"subject": subject_kind, "id": subject_id, "email": email, "last_error": error}
        logger.error(
            "sync_failed_permanently", extra={f"{subject_kind}_id": subject_id, "email": email, "last_error": error}
        )
        if self._smtp is not None:
            subject = f"crmsync: {facts['subject']} {facts['id']} failed to sync"
            body = (
                "A record could not be synced to the CRM and will not be retried automatically.\n\n"
                + "".join(f"{k}: {v}\n" for k, v in facts.items())
                + "\nRe-queue it with POST /users/{id}/sync once the cause is fixed.\n"
            )
            self._queue(subject, body, subject_id)

    def _queue(self, subject: str, body: str, about: str) -> None:
        task = asyncio.create_task(self._mail(subject, body, about))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def crm_paused(self, reason: str) -> None:
        """Report that syncing stopped for a while (the CRM's daily limit is spent); it resumes by itself."""
        logger.error("crm_sync_paused", extra={"reason": reason})
        if self._smtp is not None:
            subject = "crmsync: syncing paused by the CRM's daily limit"
            body = f"{reason}\n\nNothing is lost: changes wait in the outbox and go out after the reset.\n"
            self._queue(subject, body, "crm")

    async def close(self) -> None:
        """Wait briefly for mails in flight."""
        if self._sending:
            await asyncio.wait(list(self._sending), timeout=5)

    async def _mail(self, subject: str, body: str, about: str) -> None:
        assert self._smtp is not None
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self._smtp.sender
        message["To"] = ", ".join(self._smtp.recipients)
        message.set_content(body)
        try:
            await asyncio.to_thread(_send, self._smtp, message)
            logger.info("alert_sent", extra={"id": about})
        except (OSError, smtplib.SMTPException) as exc:
            logger.warning("alert_failed", extra={"id": about, "error": type(exc).__name__})


def _send(smtp: SmtpConfig, message: EmailMessage) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.ehlo()
        if client.has_extn("starttls"):
            client.starttls()
            client.ehlo()
        if smtp.user and smtp.password:
            client.login(smtp.user, smtp.password)
        client.send_message(message)
