"""Writing the app's content the way the app does, and a posts worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common import runtime
from nightshift.common.db.models import JobRecord
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings
from nightshift.posts import actors, indexing

assert actors.index_post is not None  # imported for its actors: the broker fixture carries them over

#: A fixed "now" for the logic tests: a Wednesday, noon UTC.
NOW = dt.datetime(2026, 11, 18, 12, 0, tzinfo=dt.UTC)


@dataclass
class Content:
    """Users, posts, likes, comments and shares written straight to the database."""

    engine: Engine
    sessions: sessionmaker[Session]
    _users: int = 0

    def user(self) -> int:
        with self.engine.begin() as connection:
            self._users += 1
            return int(
                connection.execute(
                    text("INSERT INTO users (email, display_name) VALUES (:e, 'Someone') RETURNING id"),
                    {"e": f"user{self._users}@example.test"},
                ).scalar_one()
            )

    def post(
        self,
        body: str = "",
        *,
        author: int | None = None,
        language: str | None = None,
        created_at: dt.datetime | None = None,
        index: bool = False,
    ) -> int:
        author = author or self.user()
        with self.engine.begin() as connection:
            post_id = int(
                connection.execute(
                    text(
                        "INSERT INTO posts (author_id, body, language, created_at) "
                        "VALUES (:a, :b, :l, coalesce(:c, now())) RETURNING id"
                    ),
                    {"a": author, "b": body, "l": language, "c": created_at},
                ).scalar_one()
            )
        if index:
            indexing.index_post(self.sessions, post_id, "created", max_body_chars=20_000)
        return post_id

    def likes(self, post_id: int, count: int, *, at: dt.datetime | None = None) -> None:
        self._reactions("INSERT INTO post_likes (post_id, user_id, created_at) VALUES (:p, :u, :c)", post_id, count, at)

    def comments(self, post_id: int, count: int, *, at: dt.datetime | None = None) -> None:
        self._reactions(
            "INSERT INTO comments (post_id, author_id, body, created_at) VALUES (:p, :u, 'nice', :c)",
            post_id,
            count,
            at,
        )

    def shares(self, post_id: int, count: int, *, at: dt.datetime | None = None) -> None:
        self._reactions("INSERT INTO shares (post_id, user_id, created_at) VALUES (:p, :u, :c)", post_id, count, at)

    def _reactions(self, statement: str, post_id: int, count: int, at: dt.datetime | None) -> None:
        if count <= 0:
            return
        users = [self.user() for _ in range(count)]
        with self.engine.begin() as connection:
            connection.execute(
                text(statement), [{"p": post_id, "u": u, "c": at or dt.datetime.now(dt.UTC)} for u in users]
            )

    def tags(self, post_id: int) -> list[str]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    text(
                        "SELECT h.tag FROM post_hashtags ph JOIN hashtags h ON h.id = ph.hashtag_id "
                        "WHERE ph.post_id = :p ORDER BY h.tag"
                    ),
                    {"p": post_id},
                ).scalars()
            )

    def table(self, query: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query), params)]


@pytest.fixture
def content(env: CommonSettings, clean_db: Engine) -> Content:
    return Content(clean_db, runtime.session_factory())


@pytest.fixture
def sessions(content: Content) -> sessionmaker[Session]:
    return content.sessions


@pytest.fixture
def posts_worker(broker: NightshiftRedisBroker, run_worker: Any) -> Any:
    """A worker on the posts queues (the actors are declared by importing them, above)."""
    return run_worker({"posts_high", "posts_normal", "posts_low"}, threads=2)


def wait_for_jobs(broker: NightshiftRedisBroker, engine: Engine, message_ids: Iterable[str]) -> dict[str, JobRecord]:
    """Wait until every message is done or dead; return their job records."""
    wanted = list(message_ids)

    def finished() -> dict[str, JobRecord] | None:
        broker.record_writer.flush()
        with Session(engine) as session:
            records = session.scalars(select(JobRecord).where(JobRecord.message_id.in_(wanted))).all()
        by_id = {str(record.message_id): record for record in records}
        if len(by_id) == len(wanted) and all(r.status in ("done", "dead") for r in by_id.values()):
            return by_id
        return None

    return wait_for(finished, timeout=30, what=f"{len(wanted)} posts jobs to finish")
