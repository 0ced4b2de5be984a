"""Sending one templated email to one user, once per idempotency key, with a delivery row.

At least once, not exactly once: the provider is called before the delivery row
commits, so a crash (or a lost database) between the two sends the email again
when the message is redelivered. The window is one provider call wide; the
outbox backend writes the same file again (its name comes from the key), SMTP
repeats the same ``Message-ID`` (clients that de-duplicate show it once) and
SendGrid gets the key as a custom argument, so a repeat is recognisable.
Concurrent attempts with the same key (two publications, a redelivery racing
the original) are serialised by an advisory lock and only the first sends.
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import EmailRequest
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import User
from nightshift.common.errors import NotFound
from nightshift.notifications import gdpr
from nightshift.notifications.mailers import Address, Email, Mailer
from nightshift.notifications.models import EmailDelivery
from nightshift.notifications.rendering import EmailTemplates

#: Prefix of the advisory-lock keys, so they do not collide with other uses of the key.
LOCK_NAMESPACE = "email_delivery:"


def send_email(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    request: EmailRequest,
    *,
    templates: EmailTemplates | None = None,
) -> bool:
    """Render *request*'s template for its user and send it, unless its key was sent already.

    The transaction holds an advisory lock on the key from the check to the
    delivery row, so the same key is never sent twice concurrently.

    Parameters:
      sessions: Sessions on the database holding users and deliveries.
      mailer: The backend that sends.
      request: Who, which template and the idempotency key.
      templates: The templates (the shipped ones, default locale ``en``, by default).

    Returns:
      True if the email was sent now, False if its key had been sent before.

    Raises:
      NotFound: The user does not exist.
      UnknownTemplate, TemplateFailed: The template is unknown or broken.
      ProviderUnavailable: The provider may accept it later (retried).
      ProviderRejected: The provider refused it.
    """
    templates = templates or EmailTemplates()
    key = request.idempotency_key
    with transaction(sessions) as session:
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(LOCK_NAMESPACE + key, 0))))
        if session.scalar(select(EmailDelivery.id).where(EmailDelivery.idempotency_key == key)) is not None:
            return False
        user = session.get(User, request.user_id)
        if user is None:
            raise NotFound(f"user {request.user_id} does not exist")
        context = {"display_name": user.display_name, "ids": dict(request.context_ids), "links": dict(request.links)}
        if request.template == gdpr.EXPORT_READY_TEMPLATE:
            context.update(gdpr.export_ready_context(session, request))
        rendered = templates.render(request.template, user.locale, context)
        email = Email(
            recipient=Address(user.email, user.display_name),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            idempotency_key=key,
        )
        provider_message_id = mailer.send(email)
        session.execute(
            insert(EmailDelivery)
            .values(
                idempotency_key=key,
                user_id=request.user_id,
                template=request.template,
                locale=rendered.locale,
                backend=mailer.backend,
                provider_message_id=provider_message_id,
                message_id=_current_message_id(),
            )
            .on_conflict_do_nothing(index_elements=[EmailDelivery.idempotency_key])
        )
    return True


def _current_message_id() -> str | None:
    message: dramatiq.Message[object] | None = CurrentMessage.get_current_message()
    return message.message_id if message is not None else None
