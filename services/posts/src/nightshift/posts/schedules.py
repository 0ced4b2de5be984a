"""The posts service's periodic jobs, fired by the scheduler service (times in ``TIMEZONE``)."""

from __future__ import annotations

from nightshift.common.contracts.posts import (
    CLEANUP_OLD_POSTS,
    GENERATE_CONTENT_ANALYTICS,
    OPTIMIZE_SEARCH_INDEX,
    PURGE_EXPIRED_EXPORTS,
    SEND_CONTENT_DIGEST_EMAIL,
    UPDATE_POST_ENGAGEMENT_SCORES,
    UPDATE_TRENDING_HASHTAGS,
)
from nightshift.common.schedules import Schedule

SCHEDULES = (
    Schedule(
        "update_trending_hashtags",
        "5 * * * *",
        UPDATE_TRENDING_HASHTAGS,
        overlap="skip",
        description="Rank the last complete hour's hashtags against their baseline; cache the top in Redis.",
    ),
    Schedule(
        "optimize_search_index",
        "30 3 * * *",
        OPTIMIZE_SEARCH_INDEX,
        overlap="skip",
        description="Vacuum/analyse the search table, clean the GIN pending list, reindex when bloated.",
    ),
    Schedule(
        "generate_content_analytics",
        "0 4 * * *",
        GENERATE_CONTENT_ANALYTICS,
        overlap="skip",
        description="Yesterday's content figures, compared with the same weekday of recent weeks.",
    ),
    Schedule(
        "update_post_engagement_scores",
        "0 5 * * *",
        UPDATE_POST_ENGAGEMENT_SCORES,
        overlap="skip",
        description="Recompute every post's engagement score set-based; write only changed rows.",
    ),
    Schedule(
        "cleanup_old_posts",
        "0 1 * * 0",
        CLEANUP_OLD_POSTS,
        overlap="skip",
        description="Delete old posts without engagement in batches; post.deleted for each via the outbox.",
    ),
    Schedule(
        "send_content_digest_email",
        "0 9 * * 1",
        SEND_CONTENT_DIGEST_EMAIL,
        overlap="skip",
        description="The week's digest to active, opted-in users: composed here, sent by notifications in batches.",
    ),
    Schedule(
        "purge_expired_exports",
        "20 * * * *",
        PURGE_EXPIRED_EXPORTS,
        overlap="skip",
        description="Delete export files whose link has expired; abort uploads of abandoned exports.",
    ),
)
