"""A running platform (every service's worker and the outbox relay) and a person with data everywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

import nightshift.media.actors
import nightshift.notifications.actors
import nightshift.posts.actors
import nightshift.users.actors
from nightshift.common import runtime
from nightshift.common.contracts.gdpr import GDPR_SERVICES
from nightshift.common.contracts.notifications import SEND_BULK_EMAIL, BulkEmailBatch, BulkRecipient
from nightshift.common.db.engine import make_session_factory, transaction
from nightshift.common.db.models import GdprRequest, JobRecord
from nightshift.common.events import publish
from nightshift.common.events.catalog import WEBHOOK_EVENTS
from nightshift.common.outbox import OutboxRelay
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.service import installed_services
from nightshift.common.settings import CommonSettings
from nightshift.media import processing
from nightshift.media.models import Media
from nightshift.media.settings import MediaSettings
from nightshift.notifications.feedback import apply_events
from nightshift.notifications.models import BulkEmailDelivery, EmailDelivery, PushDelivery, WebhookDeliveryLog
from nightshift.notifications.preferences import set_preference
from nightshift.notifications.push.devices import register_device
from nightshift.notifications.webhooks.endpoints import register_endpoint
from nightshift.posts import indexing, trending
from tests.unit.media.images import encode, halves

assert nightshift.media.actors and nightshift.notifications.actors and nightshift.posts.actors
assert nightshift.users.actors  # imported for their actors: the broker fixture carries them over

#: Ids far from anything a sequence hands out, so finding one in a row means finding this person.
SUBJECT_ID, OTHER_ID = 987_654_321, 123_456_789
#: The campaign both people got one email of, in one batch.
CAMPAIGN = "digest:2026-11-23"


@dataclass
class Person:
    """A user and what identifies them: the needles the scans look for."""

    user_id: int
    email: str
    name: str
    post_bodies: list[str] = field(default_factory=list)
    comment_bodies: list[str] = field(default_factory=list)
    file_keys: list[str] = field(default_factory=list)
    media_ids: list[int] = field(default_factory=list)
    #: Identifiers of their devices and integrations: push tokens, a webhook URL.
    device_keys: list[str] = field(default_factory=list)

    @property
    def needles(self) -> list[str]:
        return [
            str(self.user_id),
            self.email,
            self.name,
            *self.post_bodies,
            *self.comment_bodies,
            *self.file_keys,
            *self.device_keys,
        ]


@pytest.fixture
def platform(
    env: CommonSettings, broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> Iterator[NightshiftRedisBroker]:
    """Workers on every queue of the four services and an outbox relay, as a deployment runs them."""
    services = installed_services()
    queues = {queue for name in GDPR_SERVICES for queue in services[name].queues}
    run_worker(queues, threads=4)
    relay = OutboxRelay(clean_db, broker, poll_interval_s=0.05)
    relay.start()
    yield broker
    relay.stop()


def make_person(engine: Engine, user_id: int, email: str, name: str, *, locale: str = "en") -> Person:
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (id, email, display_name, locale, last_active_at) VALUES (:id, :e, :n, :l, now())"),
            {"id": user_id, "e": email, "n": name, "l": locale},
        )
        connection.execute(
            text(
                "INSERT INTO auth_tokens (user_id, kind, token_hash, expires_at) "
                "VALUES (:id, 'refresh', md5(CAST(:id AS text)), now() + interval '1 day')"
            ),
            {"id": user_id},
        )
        connection.execute(
            text("INSERT INTO user_sessions (user_id, last_seen_at) VALUES (:id, now())"), {"id": user_id}
        )
        connection.execute(text("INSERT INTO user_stats (user_id, posts_count) VALUES (:id, 2)"), {"id": user_id})
    return Person(user_id, email, name)


def write_post(engine: Engine, person: Person, body: str) -> int:
    with engine.begin() as connection:
        post_id = int(
            connection.execute(
                text("INSERT INTO posts (author_id, body, language) VALUES (:a, :b, 'en') RETURNING id"),
                {"a": person.user_id, "b": body},
            ).scalar_one()
        )
    person.post_bodies.append(body)
    indexing.index_post(make_session_factory(engine), post_id, "created", max_body_chars=20_000)
    return post_id


def react(engine: Engine, person: Person, post_id: int, comment: str) -> None:
    with engine.begin() as connection:
        params = {"u": person.user_id, "p": post_id, "b": comment}
        connection.execute(text("INSERT INTO comments (post_id, author_id, body) VALUES (:p, :u, :b)"), params)
        connection.execute(text("INSERT INTO post_likes (post_id, user_id) VALUES (:p, :u)"), params)
        connection.execute(text("INSERT INTO shares (post_id, user_id) VALUES (:p, :u)"), params)
    person.comment_bodies.append(comment)


def upload(engine: Engine, person: Person, post_id: int, name: str) -> int:
    """An upload the way the app makes it, processed into its variants."""
    storage = runtime.storage()
    with Session(engine) as session, session.begin():
        media = Media(owner_id=person.user_id, post_id=post_id, original_key="")
        session.add(media)
        session.flush()
        media.original_key = f"uploads/{media.id}/{name}"
        storage.put(media.original_key, encode(halves(64, 48), "JPEG"))
        media_id = media.id
    settings = runtime.service_settings(MediaSettings)
    processing.process_media_upload(
        make_session_factory(engine), storage, media_id, limits=settings.limits(), quality=settings.quality()
    )
    with Session(engine) as session:
        row = session.get(Media, media_id)
        assert row is not None and row.status == "processed"
        person.file_keys += row.stored_keys()
    person.media_ids.append(media_id)
    return media_id


def notification_data(engine: Engine, person: Person) -> None:
    """Their preferences, a device with the pushes sent to it, a webhook endpoint with a delivery."""
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        set_preference(session, person.user_id, "product_news", "email", enabled=True)
        set_preference(session, person.user_id, "digest", "push", enabled=False)
    token = f"fcm-registration-token-of-user-{person.user_id}"
    device_id = register_device(sessions, person.user_id, "fcm", token)
    url = f"http://127.0.0.1:9/hooks/integration-of-{person.user_id}"
    endpoint = register_endpoint(sessions, person.user_id, url, sorted(WEBHOOK_EVENTS)[:1], allow_loopback=True)
    with transaction(sessions) as session:  # what send_push and deliver_webhook record
        for key in (f"comment:{person.user_id}:1", f"like:{person.user_id}:2"):
            session.add(PushDelivery(idempotency_key=key, device_id=device_id, status="sent", provider_id="fcm-1"))
        event = sorted(WEBHOOK_EVENTS)[0]
        session.add(
            WebhookDeliveryLog(
                endpoint_id=endpoint.id,
                event_id=f"evt-{person.user_id}",
                event=event,
                status="delivered",
                attempts=1,
                last_status_code=200,
            )
        )
    person.device_keys += [token, url]


def campaign(engine: Engine, name: str, *people: Person) -> None:
    """One campaign batch to *people*, through the real worker (the outbox backend writes each copy)."""
    recipients = [BulkRecipient(user_id=person.user_id) for person in people]
    SEND_BULK_EMAIL.send(BulkEmailBatch(campaign=name, template="digest", category="digest", recipients=recipients))

    def sent() -> bool:
        with Session(engine) as session:
            rows = session.scalars(select(BulkEmailDelivery.status).where(BulkEmailDelivery.campaign == name)).all()
        return rows == ["sent"] * len(people)

    wait_for(sent, timeout=30, what=f"the {name} emails")


def bounce(engine: Engine, person: Person) -> None:
    """The provider reports their address bouncing: it is suppressed."""
    assert apply_events(make_session_factory(engine), [{"event": "bounce", "email": person.email}]) == 1


def welcome(engine: Engine, broker: NightshiftRedisBroker, *people: Person) -> None:
    """Each person's welcome email, through the real flow: users, the outbox, notifications."""
    for person in people:
        publish("user.registered", {"user_id": person.user_id})

    def delivered() -> bool:
        with Session(engine) as session:
            users = session.scalars(select(EmailDelivery.user_id).where(EmailDelivery.template == "welcome")).all()
        return sorted(users) == sorted(p.user_id for p in people)

    wait_for(delivered, timeout=30, what="the welcome emails")


@dataclass
class World:
    """The person whose data is exported and erased, and another who must stay untouched."""

    subject: Person
    other: Person
    subject_posts: list[int]
    other_posts: list[int]


@pytest.fixture
def world(platform: NightshiftRedisBroker, clean_db: Engine) -> World:
    subject = make_person(clean_db, SUBJECT_ID, "zelda.quixote@example.org", "Zelda Quixote", locale="fr")
    other = make_person(clean_db, OTHER_ID, "bruno.other@example.org", "Bruno Other")
    subject_posts = [
        write_post(clean_db, subject, f"Zelda's lighthouse photo number {n} #zqlighthouse #photo") for n in range(3)
    ]
    other_posts = [write_post(clean_db, other, "Bruno's garden in bloom #garden #photo")]
    react(clean_db, subject, other_posts[0], "Zelda says: what a lovely garden")
    react(clean_db, other, other_posts[0], "Bruno answers on his own post")
    upload(clean_db, subject, subject_posts[0], "zelda-lighthouse.jpg")
    upload(clean_db, other, other_posts[0], "bruno-garden.jpg")
    trending.update_trending_hashtags(
        make_session_factory(clean_db), runtime.app_redis(), hour=dt.datetime.now(dt.UTC), min_posts=1
    )
    welcome(clean_db, platform, subject, other)
    notification_data(clean_db, subject)
    notification_data(clean_db, other)
    campaign(clean_db, CAMPAIGN, subject, other)
    bounce(clean_db, subject)
    return World(subject, other, subject_posts, other_posts)


def wait_until_done(engine: Engine, broker: NightshiftRedisBroker, request_id: int) -> GdprRequest:
    def done() -> GdprRequest | None:
        broker.record_writer.flush()
        with Session(engine) as session:
            request = session.get(GdprRequest, request_id)
            dead = session.scalars(select(JobRecord.actor).where(JobRecord.status == "dead")).all()
        assert not [actor for actor in dead if actor.startswith(("gdpr_", "export_", "erase_", "assemble", "finish"))]
        return request if request is not None and request.status == "done" else None

    return wait_for(done, timeout=60, what=f"GDPR request {request_id} to complete")
