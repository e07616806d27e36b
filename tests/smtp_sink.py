"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps the mails it receives, for the alert tests."""

from __future__ import annotations

import email
import email.policy
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.mails.append(message)
        return "250 OK"


class SmtpSink:
    """``with SmtpSink(port) as sink: ... sink.mails`` — each a parsed EmailMessage."""

    def __init__(self, port: int) -> None:
        self._keep = _Keep()
        self._controller = Controller(self._keep, hostname="127.0.0.1", port=port)
        self.port = port

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[EmailMessage]:
        return list(self._keep.mails)

    def wait_for(self, predicate, timeout_s: float) -> list[EmailMessage]:
        """The mails matching ``predicate`` once at least one arrived (or none, after the timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [m for m in self.mails if predicate(m)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(1)


def body(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html", "plain"))
    return part.get_content() if part is not None else ""
