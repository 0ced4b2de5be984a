"""What a mailer sends and the one method every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class Address:
    """A mailbox: an address and the name shown with it (personal data: never logged)."""

    email: str = field(repr=False)
    name: str = field(default="", repr=False)


@dataclass(frozen=True)
class EmbeddedImage:
    """An image shown inside the HTML part where it says ``<img src="cid:CONTENT_ID">``.

    Parameters:
      content_id: The id the HTML names (without ``cid:`` and angle brackets).
      content_type: ``image/png``, ``image/jpeg``…
      data: The image's bytes.
    """

    content_id: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def file_name(self) -> str:
        """A name for clients that offer the image as a file (``throughput.png``)."""
        return f"{self.content_id}.{self.content_type.rpartition('/')[2]}"


@dataclass(frozen=True)
class Email:
    """A rendered email to one recipient.

    Parameters:
      recipient: Who receives it.
      subject: One line, already rendered.
      text: The plain-text part.
      html: The HTML part.
      idempotency_key: What makes this email once; backends derive stable
        identifiers from it (file name, ``Message-ID``) so a repeat is recognisable.
      headers: Extra headers (``List-Unsubscribe``…), as (name, value) pairs.
      images: Images the HTML shows inline (``cid:``): sent as inline attachments
        (a ``multipart/related`` part around the HTML, SendGrid's ``disposition: inline``).
      custom_args: Ids the provider returns with each event about this email (SendGrid's
        ``custom_args``: campaign, slice, user), as (name, value) pairs; never personal data.
    """

    recipient: Address
    subject: str = field(repr=False)
    text: str = field(repr=False)
    html: str = field(repr=False)
    idempotency_key: str
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    images: tuple[EmbeddedImage, ...] = field(default=(), repr=False)
    custom_args: tuple[tuple[str, str], ...] = ()


class Mailer(abc.ABC):
    """Sends emails from one sender through one provider.

    Parameters:
      sender: The ``From`` of every email this mailer sends.
    """

    #: The backend's name, recorded on each delivery row.
    backend: ClassVar[str]
    #: Emails handed over in one :meth:`send_bulk` call (SendGrid: 1,000 personalizations).
    batch_size: int = 1
    #: Whether sending the same email again is harmless (the outbox overwrites its file): a bulk
    #: request cut short by a crash is then simply made again instead of left uncertain.
    repeat_is_harmless: ClassVar[bool] = False

    def __init__(self, *, sender: Address) -> None:
        self.sender = sender

    @abc.abstractmethod
    def send(self, email: Email) -> str | None:
        """Hand *email* to the provider.

        Returns:
          The provider's id for the message, when it gives one.

        Raises:
          ProviderUnavailable: The provider may accept it later (retried).
          ProviderRejected: The provider refused it for good.
        """

    def send_bulk(self, emails: Sequence[Email]) -> list[str | None]:
        """Hand at most :attr:`batch_size` emails to the provider, in one request when it can.

        Returns:
          The provider's id for each email, in order.

        Raises:
          ProviderOutcomeUnknown: The request may have been accepted (no answer came back).
          ProviderUnavailable, ProviderRejected: As :meth:`send`: none of them was sent.
        """
        return [self.send(email) for email in emails]
