"""The ``nightshift`` command: run services, publish events, inspect the platform."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from nightshift.common.cli_plugins import add_plugin_commands
from nightshift.common.errors import EventError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Nightshift: background processing for the social backend."""


@main.command()
def up() -> None:
    """Run the whole platform locally on embedded Redis and PostgreSQL (Ctrl-C stops it)."""
    from nightshift.common.errors import ConfigurationError
    from nightshift.common.local.runner import run_local

    try:
        code = run_local()
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    sys.exit(code)


@main.command()
@click.argument("service")
@click.option("--threads", type=int, default=None, help="Worker threads (default: the service's profile).")
@click.option("--health-port", type=int, default=None, help="Port of /livez, /readyz, /metrics (0: any).")
def worker(service: str, threads: int | None, health_port: int | None) -> None:
    """Run SERVICE's worker: its queues only."""
    from nightshift.common.worker import run_worker

    sys.exit(run_worker(_service(service), threads=threads, health_port=health_port))


@main.command()
@click.argument("service")
@click.option("--health-port", type=int, default=None, help="Port of the health server (0: any).")
def run(service: str, health_port: int | None) -> None:
    """Run SERVICE the way it is deployed (a worker, or its own entry point)."""
    from nightshift.common.service import load_object
    from nightshift.common.worker import run_worker

    spec = _service(service)
    if health_port is not None:
        from dataclasses import replace

        spec = replace(spec, health_port=health_port)
    if spec.entrypoint:
        entry: Any = load_object(spec.entrypoint)
        sys.exit(entry(spec))
    sys.exit(run_worker(spec))


@main.command()
@click.argument("event")
@click.argument("payload")
def publish(event: str, payload: str) -> None:
    """Publish EVENT with the JSON object PAYLOAD (validated before anything is sent)."""
    from nightshift.common.events import validate_event

    try:
        data = json.loads(payload)
    except json.JSONDecodeError as error:
        raise click.UsageError(f"PAYLOAD is not valid JSON: {error}") from None
    try:
        validate_event(event, data)
    except EventError as error:
        raise click.ClickException(str(error)) from None

    from nightshift.common import runtime
    from nightshift.common.broker import build_broker
    from nightshift.common.events import publish as publish_event
    from nightshift.common.tracing import configure_tracing

    settings = runtime.settings()
    configure_tracing("cli", otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    broker = build_broker(settings)
    messages = publish_event(event, data, broker=broker)
    broker.close()
    for message in messages:
        click.echo(f"{message.message_id} {message.actor_name} -> {message.queue_name}")


@main.command()
def migrate() -> None:
    """Apply every pending database migration."""
    from nightshift.common import runtime
    from nightshift.common.db import migrate as migrations

    migrations.upgrade(runtime.settings().database_url)
    click.echo("database is up to date")


@main.command()
def status() -> None:
    """Queue depths, live workers and recent job outcomes."""
    from sqlalchemy import text

    from nightshift.common import runtime
    from nightshift.common.queue_stats import live_workers, queue_depths
    from nightshift.common.redis_broker import NightshiftRedisBroker
    from nightshift.common.service import installed_services

    settings = runtime.settings()
    broker = NightshiftRedisBroker(url=settings.broker_url, heartbeat_timeout=settings.heartbeat_timeout_ms)
    queues = [queue for spec in installed_services().values() for queue in spec.queues]
    click.echo(f"live worker processes: {live_workers(broker)}")
    click.echo(f"{'queue':<28}{'ready':>8}{'in flight':>11}{'delayed':>9}{'dead':>7}")
    for depth in queue_depths(broker, queues):
        click.echo(f"{depth.queue:<28}{depth.ready:>8}{depth.in_flight:>11}{depth.delayed:>9}{depth.dead:>7}")
    with runtime.engine().connect() as connection:
        rows = connection.execute(
            text(
                "SELECT status, count(*) FROM job_records WHERE updated_at > now() - interval '1 hour' "
                "GROUP BY status ORDER BY status"
            )
        ).all()
    click.echo("jobs in the last hour: " + (", ".join(f"{s} {n}" for s, n in rows) or "none"))


@main.group("dead-letters")
def dead_letters_group() -> None:
    """Inspect, replay and purge dead letters."""


@dead_letters_group.command("list")
@click.argument("queue")
@click.option("--limit", type=int, default=50)
def dead_letters_list(queue: str, limit: int) -> None:
    """The newest dead letters of QUEUE with their reasons."""
    from nightshift.common.dead_letters import list_dead_letters

    for letter in list_dead_letters(_broker(), queue, limit=limit):
        actor = letter.message.actor_name if letter.message else "?"
        click.echo(f"{letter.redis_message_id} {actor} {letter.error_type}: {letter.reason}")


@dead_letters_group.command("replay")
@click.argument("queue")
@click.argument("redis_message_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter of QUEUE.")
def dead_letters_replay(queue: str, redis_message_ids: tuple[str, ...], replay_all: bool) -> None:
    """Put dead letters back on QUEUE with their retries reset."""
    from nightshift.common.dead_letters import list_dead_letters, replay_dead_letter

    broker = _broker()
    ids = list(redis_message_ids)
    if replay_all:
        ids = [letter.redis_message_id for letter in list_dead_letters(broker, queue, limit=100_000)]
    replayed = sum(replay_dead_letter(broker, queue, redis_id) for redis_id in ids)
    click.echo(f"replayed {replayed} of {len(ids)}")


@dead_letters_group.command("purge")
@click.argument("queue")
def dead_letters_purge(queue: str) -> None:
    """Delete every dead letter of QUEUE."""
    from nightshift.common.dead_letters import purge_dead_letters

    click.echo(f"purged {purge_dead_letters(_broker(), queue)}")


def _broker() -> Any:
    from nightshift.common import runtime
    from nightshift.common.broker import build_broker

    return build_broker(runtime.settings())


def _service(name: str) -> Any:
    from nightshift.common.service import get_service

    try:
        return get_service(name)
    except KeyError as error:
        raise click.BadParameter(str(error.args[0]), param_hint="SERVICE") from None


add_plugin_commands(main)

if __name__ == "__main__":
    main()
