"""Building the MIME message the outbox and SMTP backends send."""

from __future__ import annotations

import hashlib
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import formatdate

from nightshift.notifications.errors import ProviderRejected
from nightshift.notifications.mailers.base import Address, Email


def message_id(idempotency_key: str, sender: Address) -> str:
    """A ``Message-ID`` derived from *idempotency_key*: a repeat carries the same one.

    Mail clients that de-duplicate by ``Message-ID`` then show a message sent
    twice (a retry after a crash) once.
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = sender.email.rpartition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


def one_line(value: str) -> str:
    """*value* with every run of whitespace, line breaks included, made one space."""
    return " ".join(value.split())


def build_mime(email: Email, sender: Address) -> EmailMessage:
    """The multipart/alternative message (text, then HTML) for *email* from *sender*.

    With inline images the HTML alternative is a ``multipart/related`` part: the HTML
    first, then each image with its ``Content-ID`` and ``Content-Disposition: inline``
    (RFC 2387), so ``<img src="cid:…">`` shows it.

    Raises:
      ProviderRejected: An address is malformed (the message does not say which value).
    """
    message = EmailMessage()
    try:
        message["From"] = _header_address(sender)
        message["To"] = _header_address(email.recipient)
    except (ValueError, IndexError) as error:
        raise ProviderRejected(f"malformed address ({type(error).__name__})") from None
    message["Subject"] = one_line(email.subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(email.idempotency_key, sender)
    for name, value in email.headers:
        message[name] = one_line(value)
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    if email.images:
        html_part = message.get_payload()[1]  # type: ignore[index]
        assert isinstance(html_part, EmailMessage)
        for image in email.images:
            maintype, _, subtype = image.content_type.partition("/")
            html_part.add_related(
                image.data,
                maintype=maintype,
                subtype=subtype,
                cid=f"<{image.content_id}>",
                disposition="inline",
                filename=image.file_name,
            )
    return message


def _header_address(address: Address) -> HeaderAddress:
    return HeaderAddress(display_name=one_line(address.name), addr_spec=address.email)
