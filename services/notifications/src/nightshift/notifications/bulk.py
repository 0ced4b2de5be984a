"""Sending one email to many users: provider-sized requests, once per recipient and campaign.

A :class:`BulkEmailBatch` names a campaign, a template, a category and up to a
few thousand recipients (ids only, with the ids their copy is made of). The
batch is cut into the provider's request size (SendGrid: 1,000 personalizations)
after sorting by user id, and each slice is one transaction:

1. an advisory lock on the campaign and the slice's first user, so a batch
   redelivered while the first run is still going waits for it;
2. one query finds, for the slice's users, those already recorded for the
   campaign (left alone), gone (``missing``), whose address is suppressed
   (``suppressed``) or who turned the category off (``unsubscribed``);
3. the others are rendered in their language, with the signed ``List-Unsubscribe``
   headers, and handed to the provider in one request;
4. a row per recipient, sent or skipped, goes into ``bulk_email_deliveries``;
   the transaction commits.

A batch retried after a failure or a crash therefore sends only the slices that
did not commit: nobody twice, except for the one request in flight when a worker
died (at least once, as for single emails; SendGrid receives each recipient's
``idempotency_key`` as a custom argument, so a repeat is recognisable).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import BulkEmailBatch, BulkRecipient
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import DEFAULT_PREFERENCES, suppressed_sql
from nightshift.notifications.mailers import Address, Email, Mailer
from nightshift.notifications.models import BulkEmailDelivery
from nightshift.notifications.preferences import UnsubscribeLinks
from nightshift.notifications.rendering import EmailTemplates

#: Characters of a post's body shown in an email (a digest shows excerpts, not posts).
EXCERPT_CHARS = 200

_RECIPIENTS = text(
    f"""
    SELECT r.user_id, u.email, u.display_name, u.locale,
           d.status AS recorded,
           {suppressed_sql("u.email")} AS suppressed,
           coalesce(p.enabled, :default_enabled) AS enabled
    FROM unnest(CAST(:user_ids AS bigint[])) AS r(user_id)
    LEFT JOIN users u ON u.id = r.user_id
    LEFT JOIN bulk_email_deliveries d ON d.campaign = :campaign AND d.user_id = r.user_id
    LEFT JOIN notification_preferences p
           ON p.user_id = r.user_id AND p.category = :category AND p.channel = 'email'
    """  # noqa: S608 - SQL from the code
)

_POSTS = text(
    """
    SELECT p.id, left(p.body, :chars) AS excerpt, length(p.body) > :chars AS truncated, a.display_name AS author
    FROM posts p JOIN users a ON a.id = p.author_id
    WHERE p.id = ANY(CAST(:ids AS bigint[]))
    """
)


@dataclass
class BulkOutcome:
    """What one batch did: recipients sent now, skipped now (by reason), recorded before, requests made."""

    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    already_done: int = 0
    requests: int = 0


def send_bulk_email(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    batch: BulkEmailBatch,
    *,
    links: UnsubscribeLinks,
    templates: EmailTemplates | None = None,
) -> BulkOutcome:
    """Send *batch* in provider-sized requests, honouring suppressions and preferences, once per recipient.

    Parameters:
      sessions: Sessions on the database holding users, preferences and the delivery log.
      mailer: The backend (its ``batch_size`` is the request size).
      batch: The campaign, template, category and recipients.
      links: Signs the unsubscribe links.
      templates: The templates (the shipped ones by default).

    Returns:
      The counts of this run.

    Raises:
      UnknownTemplate, TemplateFailed: The template is unknown or broken (nothing sent).
      ProviderUnavailable, ProviderRejected, Deferred: From the provider; the slices
        already committed stay sent.
    """
    templates = templates or EmailTemplates()
    templates.locale_for(batch.template, None)  # an unknown template fails before anything is sent
    recipients = sorted({r.user_id: r for r in batch.recipients}.values(), key=lambda r: r.user_id)
    size = max(1, mailer.batch_size)
    outcome = BulkOutcome()
    for start in range(0, len(recipients), size):
        _send_slice(sessions, mailer, batch, recipients[start : start + size], links, templates, outcome)
    return outcome


def _send_slice(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    batch: BulkEmailBatch,
    recipients: Sequence[BulkRecipient],
    links: UnsubscribeLinks,
    templates: EmailTemplates,
    outcome: BulkOutcome,
) -> None:
    by_id = {r.user_id: r for r in recipients}
    with transaction(sessions) as session:
        lock_key = f"bulk_email:{batch.campaign}:{recipients[0].user_id}"
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(lock_key, 0))))
        rows = session.execute(
            _RECIPIENTS,
            {
                "user_ids": list(by_id),
                "campaign": batch.campaign,
                "category": batch.category,
                "default_enabled": DEFAULT_PREFERENCES[batch.category],
            },
        ).all()
        records: list[dict[str, Any]] = []
        to_send: list[Any] = []
        for row in rows:
            if row.recorded is not None:
                outcome.already_done += 1
                continue
            status = (
                "missing"
                if row.email is None
                else "suppressed"
                if row.suppressed
                else "unsubscribed"
                if batch.category != "security" and not row.enabled
                else None
            )
            if status is not None:
                outcome.skipped[status] += 1
                records.append(_record(batch, row.user_id, status, None, mailer.backend))
            else:
                to_send.append(row)
        if to_send:
            posts = _posts(
                session, [pid for row in to_send for pid in by_id[row.user_id].context_ids.get("post_ids", [])]
            )
            emails = []
            locales = []
            for row in to_send:
                context = {
                    "display_name": row.display_name,
                    "facts": dict(batch.facts),
                    "posts": [posts[p] for p in by_id[row.user_id].context_ids.get("post_ids", []) if p in posts],
                    "ids": {k: list(v) for k, v in by_id[row.user_id].context_ids.items()},
                    "unsubscribe_url": links.url(row.user_id, batch.category),
                }
                rendered = templates.render(batch.template, row.locale, context)
                locales.append(rendered.locale)
                emails.append(
                    Email(
                        recipient=Address(row.email, row.display_name),
                        subject=rendered.subject,
                        text=rendered.text,
                        html=rendered.html,
                        idempotency_key=f"{batch.campaign}:{row.user_id}",
                        headers=links.headers(row.user_id, batch.category),
                    )
                )
            provider_ids = mailer.send_bulk(emails)
            outcome.requests += 1
            outcome.sent += len(emails)
            for row, locale, provider_id in zip(to_send, locales, provider_ids, strict=True):
                records.append(_record(batch, row.user_id, "sent", locale, mailer.backend, provider_id))
        if records:
            session.execute(
                insert(BulkEmailDelivery).on_conflict_do_nothing(
                    index_elements=[BulkEmailDelivery.campaign, BulkEmailDelivery.user_id]
                ),
                records,
            )


def _record(
    batch: BulkEmailBatch,
    user_id: int,
    status: str,
    locale: str | None,
    backend: str,
    provider_message_id: str | None = None,
) -> dict[str, Any]:
    return {
        "campaign": batch.campaign,
        "user_id": user_id,
        "status": status,
        "template": batch.template,
        "locale": locale,
        "backend": backend,
        "provider_message_id": provider_message_id,
        "message_id": _current_message_id(),
    }


def _posts(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(_POSTS.bindparams(bindparam("chars")), {"ids": sorted(set(ids)), "chars": EXCERPT_CHARS})
    return {
        row.id: {"id": row.id, "excerpt": row.excerpt + ("…" if row.truncated else ""), "author": row.author}
        for row in rows
    }


def _current_message_id() -> str | None:
    message: dramatiq.Message[object] | None = CurrentMessage.get_current_message()
    return message.message_id if message is not None else None
