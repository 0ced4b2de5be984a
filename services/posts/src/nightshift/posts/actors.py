"""The posts service's actors: parse ids, call the logic."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from dramatiq.middleware import CurrentMessage

from nightshift.common import jobs, runtime
from nightshift.common.contracts import NoArguments, contract_actor
from nightshift.common.contracts import gdpr as gdpr_contracts
from nightshift.common.contracts.gdpr import GdprRequestRef
from nightshift.common.contracts.notifications import SEND_BULK_EMAIL, BulkEmailBatch
from nightshift.common.contracts.posts import (
    CLEANUP_OLD_POSTS,
    EXPORT_CONTENT,
    GENERATE_CONTENT_ANALYTICS,
    INDEX_POST,
    OPTIMIZE_SEARCH_INDEX,
    PURGE_EXPIRED_EXPORTS,
    REINDEX_SEARCH,
    SEND_CONTENT_DIGEST_EMAIL,
    UPDATE_POST_ENGAGEMENT_SCORES,
    UPDATE_TRENDING_HASHTAGS,
    DayRef,
    DigestRequest,
    ExportRequest,
    HourRef,
    PostChange,
    ReindexRequest,
)
from nightshift.common.records import attempt_number
from nightshift.posts import (
    analytics,
    cleanup,
    digest,
    engagement,
    exports,
    gdpr,
    indexing,
    optimize,
    reindex,
    trending,
)
from nightshift.posts.settings import PostsSettings

logger = logging.getLogger(__name__)


def _settings() -> PostsSettings:
    return runtime.service_settings(PostsSettings)


@contract_actor(INDEX_POST)
def index_post(payload: PostChange) -> None:
    """Link a created, edited or deleted post's hashtags and bring its search document up to date."""
    indexing.index_post(
        runtime.session_factory(), payload.post_id, payload.change, max_body_chars=_settings().max_body_chars
    )


@contract_actor(REINDEX_SEARCH)
def reindex_search(payload: ReindexRequest) -> None:
    """Rebuild the whole search index beside the live one, then swap (resumes an interrupted rebuild)."""
    settings = _settings()
    outcome = reindex.reindex_search(
        runtime.session_factory(),
        reason=payload.reason,
        batch_size=settings.reindex_batch_size,
        max_body_chars=settings.max_body_chars,
    )
    logger.info("reindex_search: %s", outcome)


@contract_actor(OPTIMIZE_SEARCH_INDEX)
def optimize_search_index(payload: NoArguments) -> None:
    """Vacuum and analyse the search table, clean the GIN pending list, rebuild the index if bloated."""
    settings = _settings()
    optimize.optimize_search_index(
        runtime.session_factory(), bloat_ratio=settings.index_bloat_ratio, min_bytes=settings.index_bloat_min_bytes
    )


@contract_actor(UPDATE_TRENDING_HASHTAGS)
def update_trending_hashtags(payload: HourRef) -> None:
    """Rank the hashtags of an hour (the last complete one by default), store and cache the ranking."""
    settings = _settings()
    trending.update_trending_hashtags(
        runtime.session_factory(),
        runtime.app_redis(),
        hour=payload.hour,
        window_hours=settings.trending_window_hours,
        baseline_days=settings.trending_baseline_days,
        top_n=settings.trending_top_n,
        min_posts=settings.trending_min_posts,
        cache_ttl_s=settings.trending_cache_ttl_s,
    )


@contract_actor(UPDATE_POST_ENGAGEMENT_SCORES)
def update_post_engagement_scores(payload: DayRef) -> None:
    """Recompute every post's engagement score as of a local day (today by default)."""
    settings = _settings()
    timezone = runtime.settings().timezone
    engagement.update_post_engagement_scores(
        runtime.session_factory(),
        as_of=payload.day or dt.datetime.now(ZoneInfo(timezone)).date(),
        timezone=timezone,
        batch_size=settings.engagement_batch_size,
        half_life_days=settings.engagement_half_life_days,
    )


@contract_actor(GENERATE_CONTENT_ANALYTICS)
def generate_content_analytics(payload: DayRef) -> None:
    """Store a local day's content figures (yesterday by default); alert on anomalies."""
    settings = _settings()
    timezone = runtime.settings().timezone
    analytics.generate_content_analytics(
        runtime.session_factory(),
        day=payload.day or analytics.previous_local_day(dt.datetime.now(dt.UTC), timezone),
        timezone=timezone,
        history_weeks=settings.analytics_history_weeks,
        min_history=settings.analytics_min_history,
        threshold=settings.analytics_threshold,
        top_hashtags=settings.analytics_top_hashtags,
    )


@contract_actor(CLEANUP_OLD_POSTS)
def cleanup_old_posts(payload: NoArguments) -> None:
    """Delete old posts without engagement in batches, each publishing its ``post.deleted`` events."""
    settings = _settings()
    cleanup.cleanup_old_posts(
        runtime.session_factory(),
        retention=dt.timedelta(days=settings.retention_days),
        batch_size=settings.cleanup_batch_size,
    )


@contract_actor(gdpr_contracts.export_part(gdpr.SERVICE))
def gdpr_export_posts(payload: GdprRequestRef) -> None:
    """Write the user's posts, comments, likes and shares for a GDPR export."""
    gdpr.export_part(runtime.session_factory(), runtime.storage(), payload.request_id)


@contract_actor(gdpr_contracts.erase_part(gdpr.SERVICE))
def gdpr_erase_posts(payload: GdprRequestRef) -> None:
    """Erase the user's posts, comments, likes and shares, and the hashtags only they used."""
    gdpr.erase_part(runtime.session_factory(), runtime.app_redis(), payload.request_id)


@contract_actor(SEND_CONTENT_DIGEST_EMAIL)
def send_content_digest_email(payload: DigestRequest) -> None:
    """Compose the week's digests and hand them to notifications in batches of ids."""
    settings = _settings()
    timezone = runtime.settings().timezone
    now = dt.datetime.now(dt.UTC)

    def send(batch: BulkEmailBatch) -> None:
        SEND_BULK_EMAIL.send(batch)

    outcome = digest.send_content_digest_email(
        runtime.session_factory(),
        send,
        week_end=payload.week_end or now.astimezone(ZoneInfo(timezone)).date(),
        timezone=timezone,
        now=now,
        batch_size=settings.digest_batch_size,
        top_posts=settings.digest_top_posts,
        active_days=settings.digest_active_days,
        interaction_days=settings.digest_interaction_days,
        trending=settings.digest_trending,
    )
    logger.info("send_content_digest_email: %s", outcome)


@contract_actor(EXPORT_CONTENT)
def export_content(payload: ExportRequest) -> None:
    """Make (or resume) an export; its link is the job's result and the requester is emailed."""
    message = CurrentMessage.get_current_message()
    if message is None:
        raise RuntimeError("export_content runs as a Dramatiq message: its job id is the export's identity")
    settings = _settings()
    outcome = exports.export_content(
        runtime.session_factory(),
        runtime.storage(),
        payload,
        job_id=message.message_id,
        limits=exports.ExportLimits(
            max_range_days=settings.export_max_range_days,
            part_bytes=settings.export_part_bytes,
            gzip_level=settings.export_gzip_level,
            link_ttl=dt.timedelta(seconds=settings.export_link_ttl_s),
            sheet_rows=settings.export_xlsx_sheet_rows,
            timezone=runtime.settings().timezone,
        ),
        attempt=attempt_number(message.options),
        report=jobs.report_progress,
        check_abort=jobs.check_abort,
    )
    jobs.set_result(outcome.result())


@contract_actor(PURGE_EXPIRED_EXPORTS)
def purge_expired_exports(payload: NoArguments) -> None:
    """Delete expired exports' files; abandon unfinished exports nobody resumed."""
    exports.purge_expired_exports(
        runtime.session_factory(),
        runtime.storage(),
        abandon_after=dt.timedelta(hours=_settings().export_abandon_hours),
    )
