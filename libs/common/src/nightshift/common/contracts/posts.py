"""Contracts of the posts service's actors."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from nightshift.common.contracts import Contract, NoArguments, Payload
from nightshift.common.lanes import Lane

#: What happened to a post, as the indexer is told.
PostChangeKind = Literal["created", "updated", "deleted"]


class PostChange(Payload):
    """Post *post_id* was created, edited or deleted: bring its hashtags and search document up to date."""

    post_id: int = Field(gt=0)
    change: PostChangeKind


class ReindexRequest(Payload):
    """Rebuild the whole search index; *reason* is recorded with the run."""

    reason: str = Field(default="requested", min_length=1, max_length=200)


class HourRef(Payload):
    """The hour to rank, as its start; None means the last complete hour."""

    hour: dt.datetime | None = None


class DayRef(Payload):
    """A local calendar day; None means the day the task is about by default (see the actor)."""

    day: dt.date | None = None


class DigestRequest(Payload):
    """The weekly digest of the week that ends at *week_end* (None: the week that just ended)."""

    week_end: dt.date | None = None


#: What an export holds: the requester's own posts, the requester's analytics as an author
#: (per post: likes, comments, shares, score) over a date range, or every post over a date
#: range (an operator's content export).
ExportKind = Literal["own_posts", "author_analytics", "content"]


class ExportRequest(Payload):
    """Export *what* for user *requester_id* as *format*, over the local dates *since* … *until* (inclusive).

    *format* is checked by the posts service (``csv`` or ``xlsx`` today), which
    refuses an unknown one with its reason, as it refuses a range longer than
    its configured maximum and a requester who does not exist.
    """

    requester_id: int = Field(gt=0)
    what: ExportKind
    format: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9]+$")
    since: dt.date | None = None
    until: dt.date | None = None

    @model_validator(mode="after")
    def _range(self) -> ExportRequest:
        if (self.since is None) != (self.until is None):
            raise ValueError("give both since and until, or neither")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since must not be after until")
        if self.what != "own_posts" and self.since is None:
            raise ValueError(f"{self.what} exports need a date range (since and until)")
        return self


#: Real-time indexing: a post is searchable seconds after it is written.
INDEX_POST = Contract("posts", "index_post", Lane.HIGH, PostChange)
#: A full rebuild of 1M posts takes a minute or two; an hour is a hung worker.
REINDEX_SEARCH = Contract("posts", "reindex_search", Lane.LOW, ReindexRequest, options={"time_limit": 3_600_000})
OPTIMIZE_SEARCH_INDEX = Contract(
    "posts", "optimize_search_index", Lane.LOW, NoArguments, options={"time_limit": 3_600_000}
)
UPDATE_TRENDING_HASHTAGS = Contract("posts", "update_trending_hashtags", Lane.NORMAL, HourRef)
UPDATE_POST_ENGAGEMENT_SCORES = Contract(
    "posts", "update_post_engagement_scores", Lane.NORMAL, DayRef, options={"time_limit": 3_600_000}
)
GENERATE_CONTENT_ANALYTICS = Contract("posts", "generate_content_analytics", Lane.NORMAL, DayRef)
CLEANUP_OLD_POSTS = Contract("posts", "cleanup_old_posts", Lane.LOW, NoArguments, options={"time_limit": 3_600_000})
#: Weekly digest: composes in SQL and hands batches to notifications; an hour is a hung worker.
SEND_CONTENT_DIGEST_EMAIL = Contract(
    "posts", "send_content_digest_email", Lane.LOW, DigestRequest, options={"time_limit": 3_600_000}
)


#: Exports: resumable, so a long one may run for hours; a time limit still bounds a stuck one.
EXPORT_CONTENT = Contract("posts", "export_content", Lane.HIGH, ExportRequest, options={"time_limit": 4 * 3_600_000})
PURGE_EXPIRED_EXPORTS = Contract("posts", "purge_expired_exports", Lane.LOW, NoArguments)
