"""Emailing the operators a document another service rendered (a report), with its images inline.

The sender puts each image in storage and names it by key; here the images are read
back and attached inline (``cid:``), so a mail client shows the charts inside the HTML
without loading anything from the network. Once per idempotency key, claimed in the
transaction that wraps the send, as for alerts.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import OperatorEmail
from nightshift.common.db.engine import transaction
from nightshift.common.errors import NotFound
from nightshift.common.idempotency import claim
from nightshift.common.storage import Storage
from nightshift.notifications.mailers import Address, Email, EmbeddedImage, Mailer


def send_operator_email(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    storage: Storage,
    request: OperatorEmail,
    *,
    operators_address: str,
) -> bool:
    """Email *request* to *operators_address* unless its key was sent already.

    Returns:
      True if it was sent now, False if its key had been sent before.

    Raises:
      NotFound: An image's object is missing from storage (naming its content id and key).
      ProviderUnavailable, ProviderRejected: As for any email.
    """
    key = f"operator_email:{request.idempotency_key}"
    with transaction(sessions) as session:
        if not claim(session, key):
            return False
        mailer.send(
            Email(
                recipient=Address(operators_address, "Nightshift operators"),
                subject=request.subject,
                text=request.text,
                html=request.html,
                idempotency_key=key,
                images=tuple(
                    _read(storage, image.content_id, image.storage_key, image.content_type) for image in request.images
                ),
            )
        )
    return True


def _read(storage: Storage, content_id: str, storage_key: str, content_type: str) -> EmbeddedImage:
    try:
        data = storage.get(storage_key)
    except NotFound:
        raise NotFound(f"inline image {content_id!r}: no object at storage key {storage_key!r}") from None
    return EmbeddedImage(content_id, content_type, data)
