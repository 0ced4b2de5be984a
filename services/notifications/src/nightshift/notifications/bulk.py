"""Sending one email to many users: provider-sized requests, each recipient at most once per campaign.

A :class:`BulkEmailBatch` names a campaign, a template, a category and up to a
few thousand recipients (ids only, with the ids their copy is made of). The
batch is cut into the provider's request size (SendGrid: up to 1,000
personalizations, ``NOTIFICATIONS_SENDGRID_BATCH_SIZE``) after sorting by user
id. Each slice is one provider request, made under a PostgreSQL advisory lock on
the campaign and the slice's first user (held on one connection for the whole
slice, so a redelivery racing a live sender waits for it):

1. **before the request** one transaction finds, for the slice's users, those
   already recorded for the campaign (left alone), gone (``missing``), whose
   address is suppressed (``suppressed``) or who turned the category off
   (``unsubscribed``); renders the others; records them as ``sending`` with a
   new slice id (and the slice: template, category, facts) and commits;
2. the request: one personalization per recipient, whose ``custom_args`` name
   the campaign, the slice and the user (SendGrid returns them with every event);
3. **after the answer** the slice's rows become ``sent``. An answer saying the
   request was not accepted (no connection, 429, 5xx, 4xx, an open breaker, a
   rate limit) deletes them again, so a retry sends them; no answer at all
   (timeout, connection lost) or any other error makes them ``uncertain``.

A ``sending`` row found under the lock therefore belongs to a sender that died
between 1 and 3: its request may or may not have reached the provider. It is
**not** sent again: it becomes ``uncertain`` (at most once), and
:mod:`~nightshift.notifications.bulk_reconcile` settles it — SendGrid's signed
event webhook (``processed``, ``delivered``…) carrying its ids makes it ``sent``;
one still uncertain after ``NOTIFICATIONS_BULK_UNCERTAIN_GRACE_S`` is reported
to the operators, who may resend it (``nightshift notifications
resend-uncertain``, a batch with ``resend_uncertain``). With a backend whose
repeats are harmless (the outbox overwrites its files) the slice is simply sent
again instead.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from sqlalchemy import Connection, Engine, TextClause, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import BulkEmailBatch, BulkRecipient
from nightshift.common.db.models import DEFAULT_PREFERENCES, suppressed_sql
from nightshift.common.errors import Deferred
from nightshift.notifications.errors import ProviderOutcomeUnknown, ProviderRejected, ProviderUnavailable
from nightshift.notifications.mailers import Address, Email, Mailer
from nightshift.notifications.models import BulkEmailDelivery, BulkEmailSlice
from nightshift.notifications.preferences import UnsubscribeLinks
from nightshift.notifications.rendering import EmailTemplates

#: Characters of a post's body shown in an email (a digest shows excerpts, not posts).
EXCERPT_CHARS = 200
#: Custom arguments of every bulk personalization, returned by SendGrid's events: they tie an
#: event to its recipient's row (``bulk_reconcile.confirm_from_events``).
CAMPAIGN_ARG = "nightshift_campaign"
SLICE_ARG = "nightshift_slice"
USER_ARG = "nightshift_user"
#: Errors meaning the provider did not take the request: its recipients may be sent again.
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (Deferred, ProviderRejected, ProviderUnavailable)

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
    """What one batch did: recipients sent now, skipped now (by reason), recorded before, requests made.

    ``uncertain`` counts the recipients this run found in flight from a dead sender (or whose request
    got no answer) and left unsent; ``resent`` those of ``resend_uncertain`` sent again.
    """

    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    already_done: int = 0
    requests: int = 0
    uncertain: int = 0
    resent: int = 0


def send_bulk_email(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    batch: BulkEmailBatch,
    *,
    links: UnsubscribeLinks,
    templates: EmailTemplates | None = None,
) -> BulkOutcome:
    """Send *batch* in provider-sized requests, honouring suppressions and preferences, at most once each.

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
      ProviderOutcomeUnknown: A request got no answer; its recipients are left ``uncertain``.
      ProviderUnavailable, ProviderRejected, Deferred: From the provider; the slices
        already answered stay sent, the refused one is sent by a retry.
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
    slice_id = uuid.uuid4()
    with _slice_lock(sessions, f"bulk_email:{batch.campaign}:{recipients[0].user_id}") as connection:
        with Session(connection) as session, session.begin():
            emails, resent = _record_sending(session, mailer, batch, recipients, slice_id, links, templates, outcome)
        if not emails:
            return
        try:
            provider_ids = mailer.send_bulk(emails)
        except NOT_SENT_ERRORS as error:
            if isinstance(error, ProviderOutcomeUnknown):
                _settle(connection, batch.campaign, slice_id, _MARK_UNCERTAIN, {})
                outcome.uncertain += len(emails)
            else:
                _settle(connection, batch.campaign, slice_id, _RELEASE, {"resent": resent})
            raise
        except BaseException:
            # A bug, a time limit, a shutdown mid-request: the request may have gone; never repeat it blindly.
            _settle(connection, batch.campaign, slice_id, _MARK_UNCERTAIN, {})
            outcome.uncertain += len(emails)
            raise
        users = [int(dict(email.custom_args)[USER_ARG]) for email in emails]
        _settle(connection, batch.campaign, slice_id, _MARK_SENT, {"users": users, "provider_ids": provider_ids})
        outcome.requests += 1
        outcome.sent += len(emails) - len(resent)
        outcome.resent += len(resent)


def _record_sending(
    session: Session,
    mailer: Mailer,
    batch: BulkEmailBatch,
    recipients: Sequence[BulkRecipient],
    slice_id: uuid.UUID,
    links: UnsubscribeLinks,
    templates: EmailTemplates,
    outcome: BulkOutcome,
) -> tuple[list[Email], list[int]]:
    """Step 1: classify the slice's users, render those to send, record them ``sending`` (with the slice).

    Returns:
      The emails to send, and the users among them that were ``uncertain`` (resent on request).
    """
    by_id = {r.user_id: r for r in recipients}
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
    dead_in_flight: list[int] = []
    resent: list[int] = []
    for row in rows:
        if row.recorded == "sending" and not mailer.repeat_is_harmless:
            dead_in_flight.append(row.user_id)  # under the lock: its sender died mid-request
            continue
        if row.recorded == "uncertain" and batch.resend_uncertain:
            resent.append(row.user_id)
        elif row.recorded is not None and row.recorded != "sending":
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
    if dead_in_flight:
        session.execute(
            text(
                "UPDATE bulk_email_deliveries SET status = 'uncertain', updated_at = now() "
                "WHERE campaign = :campaign AND user_id = ANY(:users) AND status = 'sending'"
            ),
            {"campaign": batch.campaign, "users": dead_in_flight},
        )
        outcome.uncertain += len(dead_in_flight)
    emails: list[Email] = []
    if to_send:
        posts = _posts(session, [pid for row in to_send for pid in by_id[row.user_id].context_ids.get("post_ids", [])])
        for row in to_send:
            recipient = by_id[row.user_id]
            context = {
                "display_name": row.display_name,
                "facts": dict(batch.facts),
                "posts": [posts[p] for p in recipient.context_ids.get("post_ids", []) if p in posts],
                "ids": {k: list(v) for k, v in recipient.context_ids.items()},
                "unsubscribe_url": links.url(row.user_id, batch.category),
            }
            rendered = templates.render(batch.template, row.locale, context)
            emails.append(
                Email(
                    recipient=Address(row.email, row.display_name),
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    idempotency_key=f"{batch.campaign}:{row.user_id}",
                    headers=links.headers(row.user_id, batch.category),
                    custom_args=(
                        (CAMPAIGN_ARG, batch.campaign),
                        (SLICE_ARG, str(slice_id)),
                        (USER_ARG, str(row.user_id)),
                    ),
                )
            )
            records.append(
                {
                    **_record(batch, row.user_id, "sending", rendered.locale, mailer.backend),
                    "slice_id": slice_id,
                    "context_ids": {k: list(v) for k, v in recipient.context_ids.items()},
                }
            )
        session.add(
            BulkEmailSlice(
                id=slice_id,
                campaign=batch.campaign,
                template=batch.template,
                category=batch.category,
                facts=dict(batch.facts),
                recipients=len(emails),
                message_id=_current_message_id(),
            )
        )
        session.flush()
    if records:
        statement = insert(BulkEmailDelivery)
        # A resent (or harmlessly repeated) row is taken over by this slice; any other is left as recorded.
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[BulkEmailDelivery.campaign, BulkEmailDelivery.user_id],
                set_={
                    "status": statement.excluded.status,
                    "slice_id": statement.excluded.slice_id,
                    "context_ids": statement.excluded.context_ids,
                    "locale": statement.excluded.locale,
                    "message_id": statement.excluded.message_id,
                    "updated_at": func.now(),
                },
                where=text("bulk_email_deliveries.status IN ('sending', 'uncertain')"),
            ),
            [{"slice_id": None, "context_ids": None, **record} for record in records],
        )
    return emails, resent


#: Step 3 after an answer: the slice's rows are sent (a webhook event may have said so already).
_MARK_SENT = (
    text(
        "UPDATE bulk_email_deliveries d SET status = 'sent', provider_message_id = a.provider_id, "
        "context_ids = NULL, confirmed_by = 'response', updated_at = now() "
        "FROM unnest(CAST(:users AS bigint[]), CAST(:provider_ids AS text[])) AS a(user_id, provider_id) "
        "WHERE d.campaign = :campaign AND d.user_id = a.user_id AND d.slice_id = :slice "
        "AND d.status IN ('sending', 'uncertain')"
    ),
    text("UPDATE bulk_email_slices SET answered_at = now() WHERE id = :slice"),
)
#: Step 3 after "not accepted": the rows go (resent ones back to ``uncertain``), so a retry sends them.
_RELEASE = (
    text(
        "DELETE FROM bulk_email_deliveries WHERE campaign = :campaign AND slice_id = :slice "
        "AND status = 'sending' AND user_id <> ALL(CAST(:resent AS bigint[]))"
    ),
    text(
        "UPDATE bulk_email_deliveries SET status = 'uncertain', updated_at = now() "
        "WHERE campaign = :campaign AND slice_id = :slice AND status = 'sending'"
    ),
    text("UPDATE bulk_email_slices SET answered_at = now() WHERE id = :slice"),
)
#: Step 3 without an answer: maybe sent; left to the provider's events and the operators.
_MARK_UNCERTAIN = (
    text(
        "UPDATE bulk_email_deliveries SET status = 'uncertain', updated_at = now() "
        "WHERE campaign = :campaign AND slice_id = :slice AND status = 'sending'"
    ),
)


def _settle(
    connection: Connection,
    campaign: str,
    slice_id: uuid.UUID,
    statements: tuple[TextClause, ...],
    values: dict[str, Any],
) -> None:
    """Step 3: run *statements* on the slice's rows in one transaction."""
    with Session(connection) as session, session.begin():
        for statement in statements:
            session.execute(statement, {"campaign": campaign, "slice": slice_id, **values})


@contextmanager
def _slice_lock(sessions: sessionmaker[Session], key: str) -> Iterator[Connection]:
    """One connection holding a session-level advisory lock on *key* until the block ends.

    The lock outlives the block's commits (step 1 commits before the request) and
    goes with the connection if the process dies, so a ``sending`` row seen while
    holding it belongs to a sender that is gone.
    """
    with sessions() as session:
        engine = session.get_bind()
    if not isinstance(engine, Engine):
        raise TypeError("bulk email needs sessions bound to an Engine (it holds a connection of its own)")
    lock_id = func.hashtextextended(key, 0)
    with engine.connect() as connection:
        connection.execute(select(func.pg_advisory_lock(lock_id)))
        connection.commit()
        try:
            yield connection
        finally:
            try:
                connection.rollback()
                connection.execute(select(func.pg_advisory_unlock(lock_id)))
                connection.commit()
            except DBAPIError:
                connection.invalidate()  # closing the connection releases the lock


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
