"""``nightshift posts reindex | search | trending``: the search index and rankings, from a terminal."""

from __future__ import annotations

import json

import click


@click.group()
def posts() -> None:
    """Rebuild and query the posts search index; show trending hashtags."""


@posts.command()
@click.option("--reason", default="operator request", show_default=True, help="Recorded with the rebuild.")
@click.option("--here", is_flag=True, help="Rebuild in this process (with progress) instead of asking a worker.")
def reindex(reason: str, here: bool) -> None:
    """Rebuild the whole search index beside the live one, then swap; search stays online.

    By default publishes ``posts.reindex_requested`` (a posts worker does the work) and
    prints the job id. An interrupted rebuild resumes where it stopped.
    """
    from nightshift.common import runtime

    if here:
        from nightshift.posts.reindex import reindex_search
        from nightshift.posts.settings import PostsSettings

        settings = runtime.service_settings(PostsSettings)
        batches = 0
        while True:
            outcome = reindex_search(
                runtime.session_factory(),
                reason=reason,
                batch_size=settings.reindex_batch_size,
                max_body_chars=settings.max_body_chars,
                max_batches=10,
            )
            if outcome.status == "busy":
                raise click.ClickException("another rebuild is running; it will finish on its own")
            batches += outcome.batches
            if outcome.status == "done":
                click.echo(f"rebuild {outcome.run_id} done: {outcome.documents} documents live ({batches} batches)")
                return
            click.echo(f"rebuild {outcome.run_id}: {batches} batches copied…")

    from nightshift.common.broker import build_broker
    from nightshift.common.events import publish

    broker = build_broker(runtime.settings(), set_global=False)
    try:
        messages = publish("posts.reindex_requested", {"reason": reason}, broker=broker)
    finally:
        broker.record_writer.close()
        broker.close()
    for message in messages:
        click.echo(f"{message.message_id} {message.actor_name} -> {message.queue_name}")


@posts.command()
@click.argument("query")
@click.option("--limit", default=10, show_default=True)
def search(query: str, limit: int) -> None:
    """The posts matching QUERY (words, "phrases", -excluded), best first."""
    from nightshift.common import runtime
    from nightshift.common.db.models import Post
    from nightshift.posts.search import search_posts

    with runtime.session_factory()() as session:
        hits = search_posts(session, query, limit=limit)
        for hit in hits:
            post = session.get(Post, hit.post_id)
            body = (post.body if post else "").replace("\n", " ")
            click.echo(f"{hit.post_id:>10}  {hit.rank:.3f}  {body[:90]}")
    if not hits:
        click.echo("no match")


@posts.command()
@click.option("--json", "as_json", is_flag=True, help="Print the cached JSON as the app reads it.")
def trending(as_json: bool) -> None:
    """The latest trending hashtags, as cached in Redis for the app."""
    from nightshift.common import runtime
    from nightshift.posts.trending import cached_trending

    ranking = cached_trending(runtime.app_redis())
    if ranking is None:
        raise click.ClickException("no ranking cached (update_trending_hashtags has not run within the cache's life)")
    if as_json:
        click.echo(json.dumps(ranking, indent=2))
        return
    click.echo(f"hour starting {ranking['hour']}")
    for entry in ranking["hashtags"]:  # type: ignore[attr-defined]
        click.echo(f"  {entry['rank']:>3}. #{entry['tag']}  score {entry['score']:.2f}")
