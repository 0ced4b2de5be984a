"""Settings of the posts service (prefix ``POSTS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings


class PostsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="POSTS_")

    #: Posts with a longer body are refused by the indexer (dead-lettered with the reason):
    #: PostgreSQL's tsvector holds at most 1 MB, and no real post is a book.
    max_body_chars: int = Field(default=20_000, ge=100, le=500_000)

    #: Trending: the recent window ranked, in hours, ending at the end of the ranked hour.
    trending_window_hours: int = Field(default=3, ge=1, le=48)
    #: Trending: how far back (before the window) a hashtag's baseline use is measured.
    trending_baseline_days: int = Field(default=7, ge=1, le=60)
    #: Trending: how many hashtags are stored per hour and cached in Redis.
    trending_top_n: int = Field(default=20, ge=1, le=1000)
    #: Trending: a hashtag needs at least this many posts in the window to rank.
    trending_min_posts: int = Field(default=3, ge=1)
    #: Trending: seconds the cached ranking lives in Redis (the app falls back to the table).
    trending_cache_ttl_s: int = Field(default=7200, ge=60)

    #: Engagement scores: posts per set-based statement (one short transaction each).
    engagement_batch_size: int = Field(default=50_000, ge=100, le=1_000_000)
    #: Engagement scores: days for a post's score to halve.
    engagement_half_life_days: float = Field(default=7.0, gt=0)

    #: Analytics: how many previous same weekdays the day is compared with.
    analytics_history_weeks: int = Field(default=6, ge=3, le=52)
    #: Analytics: fewer previous same weekdays than this and no anomaly is looked for.
    analytics_min_history: int = Field(default=4, ge=3)
    #: Analytics: robust z-score (0.6745 x deviation / MAD) beyond which a metric is anomalous.
    analytics_threshold: float = Field(default=3.5, gt=0)
    #: Analytics: hashtags listed in a day's row.
    analytics_top_hashtags: int = Field(default=10, ge=1, le=100)

    #: Cleanup: posts older than this with no like, comment or share are deleted.
    retention_days: int = Field(default=365, ge=1)
    #: Cleanup: posts deleted (and ``post.deleted`` events written) per transaction.
    cleanup_batch_size: int = Field(default=1000, ge=1, le=50_000)

    #: Reindex: posts copied into the new index per transaction (the resume point moves by this).
    reindex_batch_size: int = Field(default=20_000, ge=100, le=1_000_000)
    #: Optimize: the GIN index is rebuilt when its bytes per document exceed the fresh index's by this factor.
    index_bloat_ratio: float = Field(default=1.5, gt=1.0)
    #: Optimize: indexes smaller than this are never rebuilt (the gain would be nil).
    index_bloat_min_bytes: int = Field(default=16 * 1024 * 1024, ge=0)

    #: Digest: users per page, and so recipients per ``send_bulk_email`` message at most.
    digest_batch_size: int = Field(default=1000, ge=1, le=5000)
    #: Digest: posts per user.
    digest_top_posts: int = Field(default=5, ge=1, le=20)
    #: Digest: users active in the last this many days get one.
    digest_active_days: int = Field(default=30, ge=1)
    #: Digest: interactions (likes, comments, shares) this recent choose the authors.
    digest_interaction_days: int = Field(default=90, ge=1)
    #: Digest: trending hashtags of the week listed.
    digest_trending: int = Field(default=5, ge=0, le=20)
    #: Exports: the longest date range an export may cover, in days (longer requests are refused).
    export_max_range_days: int = Field(default=366, ge=1, le=3660)
    #: Exports: compressed bytes per uploaded part (S3 needs at least 5 MiB for all parts but the last).
    export_part_bytes: int = Field(default=5 * 1024 * 1024, ge=16 * 1024, le=512 * 1024 * 1024)
    #: Exports: gzip level of CSV exports (1 fastest … 9 smallest); 1 keeps up with COPY (bench/exports.py).
    export_gzip_level: int = Field(default=1, ge=1, le=9)
    #: Exports: how long the download link works, in seconds; the file is removed after that.
    export_link_ttl_s: int = Field(default=72 * 3600, ge=1, le=7 * 24 * 3600)
    #: Exports: data rows per XLSX sheet before the next sheet starts (Excel's limit, less the header row).
    export_xlsx_sheet_rows: int = Field(default=1_048_575, ge=10, le=1_048_575)
    #: Exports: an unfinished export untouched for this many hours is abandoned by the purge.
    export_abandon_hours: int = Field(default=48, ge=1)
