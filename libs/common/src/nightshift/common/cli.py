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
    """Run SERVICE the way it is deployed (a worker, a memory-bound pool, or its own entry point)."""
    from nightshift.common.memory_bound import memory_bound_profile
    from nightshift.common.service import load_object
    from nightshift.common.worker import run_worker
    from nightshift.common.worker_pool import run_worker_pool

    spec = _service(service)
    if health_port is not None:
        from dataclasses import replace

        spec = replace(spec, health_port=health_port)
    if spec.entrypoint:
        entry: Any = load_object(spec.entrypoint)
        sys.exit(entry(spec))
    profile = memory_bound_profile(spec.name, spec.memory_bound)
    if profile is not None:
        sys.exit(run_worker_pool(spec, processes=profile.processes, threads=1, prefetch=1))
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
    from nightshift.common.redis_ha import redis_client
    from nightshift.common.service import installed_services

    settings = runtime.settings()
    broker = NightshiftRedisBroker(
        client=redis_client(settings, db=settings.broker_redis_db),  # through Sentinel when configured
        heartbeat_timeout=settings.heartbeat_timeout_ms,
    )
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
    """Inspect, replay, delete and purge dead letters, by job id (the id `publish` prints)."""


@dead_letters_group.command("list")
@click.argument("queue")
@click.option("--limit", type=int, default=50)
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def dead_letters_list(queue: str, limit: int, as_json: bool) -> None:
    """The newest dead letters of QUEUE: job id, actor, when it died and why."""
    from nightshift.common.dead_letters import list_dead_letters

    broker = _broker()
    letters = list_dead_letters(broker, queue, limit=limit)
    broker.close()
    if as_json:
        click.echo(json.dumps([_letter_json(letter) for letter in letters], indent=2))
        return
    for letter in letters:
        job_id = letter.job_id or f"(undecodable {letter.redis_message_id})"
        died = letter.dead_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"{job_id}  {letter.actor or '?'}  {died}  {letter.error_type}: {letter.reason}")


@dead_letters_group.command("replay")
@click.argument("args", nargs=-1, metavar="[QUEUE] [JOB_ID]...")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter of QUEUE.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def dead_letters_replay(args: tuple[str, ...], replay_all: bool, as_json: bool) -> None:
    """Put dead letters back on their queue with their retries reset.

    Give job ids (the queue is found from them), or QUEUE and job ids, or QUEUE --all.
    An id that matches no dead letter is an error, and then nothing is replayed.
    """
    from nightshift.common import dead_letters

    queue, job_ids = _queue_and_ids(args)
    broker = _broker()
    try:
        if replay_all:
            if queue is None or job_ids:
                raise click.UsageError("--all takes a QUEUE and no job ids")
            total = int(broker.client.zcard(broker.keys.dead(queue)))
            with _progress(total, "replaying") as bar:
                count = dead_letters.replay_all(broker, queue, progress=bar.update)
            _report({"replayed": count, "queue": queue}, f"replayed {count} of {total}", as_json)
            return
        if not job_ids:
            raise click.UsageError("give job ids, or QUEUE --all")
        done: list[str] = []
        with _progress(len(job_ids), "replaying") as bar:
            for where, ids in _by_queue(broker, queue, job_ids).items():
                replayed = dead_letters.replay(broker, where, ids, progress=bar.update)
                done += [str(letter.job_id) for letter in replayed]
        _report({"replayed": done}, f"replayed {len(done)} of {len(job_ids)}", as_json)
    finally:
        broker.close()


@dead_letters_group.command("delete")
@click.argument("args", nargs=-1, metavar="[QUEUE] JOB_ID...")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def dead_letters_delete(args: tuple[str, ...], as_json: bool) -> None:
    """Delete dead letters by job id (all or nothing: an unknown id deletes none)."""
    from nightshift.common import dead_letters

    queue, job_ids = _queue_and_ids(args)
    if not job_ids:
        raise click.UsageError("give the job ids of the dead letters to delete")
    broker = _broker()
    try:
        count = 0
        with _progress(len(job_ids), "deleting") as bar:
            for where, ids in _by_queue(broker, queue, job_ids).items():
                count += dead_letters.delete(broker, where, ids, progress=bar.update)
        _report({"deleted": count}, f"deleted {count}", as_json)
    finally:
        broker.close()


@dead_letters_group.command("purge")
@click.argument("queue")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def dead_letters_purge(queue: str, as_json: bool) -> None:
    """Delete every dead letter of QUEUE."""
    from nightshift.common.dead_letters import purge_dead_letters

    broker = _broker()
    count = purge_dead_letters(broker, queue)
    broker.close()
    _report({"purged": count, "queue": queue}, f"purged {count}", as_json)


@main.group("breakers")
def breakers_group() -> None:
    """Circuit breakers of the external dependencies (shared by every worker)."""


@breakers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per breaker, in a list.")
def breakers_list(as_json: bool) -> None:
    """Every circuit breaker: state, failures in a row, when an open one lets a probe through."""
    import datetime as dt

    from nightshift.common import runtime
    from nightshift.common.breakers import breaker_states

    states = breaker_states(runtime.app_redis())
    if as_json:
        click.echo(json.dumps([state.as_dict() for state in states]))
        return
    if not states:
        click.echo("no circuit breaker has been used yet")
        return
    click.echo(f"{'breaker':<32}{'state':<11}{'failures':>9}  {'probe after':<21}last error")
    for state in states:
        probe = ""
        if state.state == "open" and state.open_until_ms:
            probe = dt.datetime.fromtimestamp(state.open_until_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        error = (state.last_error or "")[:60]
        click.echo(f"{state.name:<32}{state.state:<11}{state.failures:>9}  {probe:<21}{error}")


@breakers_group.command("reset")
@click.argument("name")
def breakers_reset(name: str) -> None:
    """Close breaker NAME now (the next call goes through)."""
    from nightshift.common import runtime
    from nightshift.common.breakers import reset_breaker

    try:
        state = reset_breaker(runtime.app_redis(), name)
    except KeyError as error:
        raise click.ClickException(str(error.args[0])) from None
    click.echo(f"{state.name} {state.state}")


def _letter_json(letter: Any) -> dict[str, Any]:
    return {
        "job_id": letter.job_id,
        "actor": letter.actor,
        "queue": letter.queue_name,
        "dead_at": letter.dead_at.isoformat(),
        "error_type": letter.error_type,
        "reason": letter.reason,
    }


def _queue_and_ids(args: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """Split ``[QUEUE] [JOB_ID]...``: job ids are UUIDs, queue names never are."""
    import uuid

    def is_job_id(value: str) -> bool:
        try:
            uuid.UUID(value)
        except ValueError:
            return False
        return True

    if args and not is_job_id(args[0]):
        queue, rest = args[0], list(args[1:])
    else:
        queue, rest = None, list(args)
    bad = [value for value in rest if not is_job_id(value)]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not a job id (the id `publish` prints)", param_hint="JOB_ID")
    return queue, rest


def _by_queue(broker: Any, queue: str | None, job_ids: list[str]) -> dict[str, list[str]]:
    """Job ids grouped by the queue whose dead letters hold them (found when not given)."""
    from nightshift.common.dead_letters import find_dead_letter_queue, get_dead_letters
    from nightshift.common.errors import UnknownJob

    try:
        if queue is not None:
            get_dead_letters(broker, queue, job_ids)  # every id checked before anything changes
            return {queue: job_ids}
        grouped: dict[str, list[str]] = {}
        for job_id in job_ids:
            grouped.setdefault(find_dead_letter_queue(broker, job_id), []).append(job_id)
        return grouped
    except UnknownJob as error:
        raise click.ClickException(str(error)) from None


def _progress(total: int, label: str) -> Any:
    """A progress bar on stderr (stdout stays clean for --json); silent unless stderr is a terminal."""
    return click.progressbar(length=max(total, 0), label=label, file=sys.stderr)


def _report(data: dict[str, Any], text: str, as_json: bool) -> None:
    click.echo(json.dumps(data) if as_json else text)


@main.group()
def security() -> None:
    """Least-privilege material generated from the installed services."""


@security.command("redis-acl")
@click.option(
    "--app-keys",
    multiple=True,
    metavar="SERVICE=PATTERN",
    help="A key pattern a service uses in the application Redis (repeatable).",
)
def redis_acl(app_keys: tuple[str, ...]) -> None:
    """Print a Redis ACL file with one user per service (passwords from REDIS_ACL_PASSWORD_<SERVICE>)."""
    import os

    from nightshift.common.redis_acl import acl_file, acl_rules, user_name
    from nightshift.common.service import installed_services

    extra: dict[str, tuple[str, ...]] = {}
    for item in app_keys:
        service, separator, pattern = item.partition("=")
        if not separator or not pattern:
            raise click.BadParameter(f"{item!r} is not SERVICE=PATTERN", param_hint="--app-keys")
        extra[service] = (*extra.get(service, ()), pattern)
    specs = list(installed_services().values())
    passwords = {}
    for spec in specs:
        variable = f"REDIS_ACL_PASSWORD_{spec.name.upper()}"
        if not os.environ.get(variable):
            raise click.ClickException(f"{variable} is not set (the password of Redis user {user_name(spec.name)})")
        passwords[user_name(spec.name)] = os.environ[variable]
    click.echo(acl_file(acl_rules(specs, app_keys=extra), passwords), nl=False)


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
