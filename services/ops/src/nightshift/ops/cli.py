"""The operators' commands: ``nightshift inspect …``, ``job``, ``revoke``, ``purge`` and ``ops …``.

One id everywhere: every command takes and prints job ids (the ids ``publish``
prints). An id that matches nothing is an error (exit status 1) that says so.
Tables by default, ``--json`` for scripts; long operations show a progress bar.
Actions are audited as ``user@host`` via ``cli``.
"""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from nightshift.common.errors import NightshiftError

#: Help of ``--json``.
JSON_HELP = "Print JSON instead of a table."


def _who() -> Any:
    from nightshift.ops.accounts import Principal

    return Principal(f"{getpass.getuser()}@{socket.gethostname()}", "cli", frozenset({"read", "act"}))


@contextmanager
def _context() -> Iterator[Any]:
    """The same objects the web process uses, for one command."""
    from nightshift.common import runtime
    from nightshift.common.broker import build_broker
    from nightshift.ops.context import OpsContext
    from nightshift.ops.settings import OpsSettings

    settings = runtime.settings()
    broker = build_broker(settings, set_global=False)
    try:
        yield OpsContext.build(
            settings=settings,
            options=runtime.service_settings(OpsSettings),
            sessions=runtime.session_factory(),
            broker=broker,
            app_redis=runtime.app_redis(),
        )
    finally:
        broker.close()


@contextmanager
def _errors() -> Iterator[None]:
    """Known failures become a one-line error and exit status 1."""
    from nightshift.common.schedule_control import UnknownSchedule
    from nightshift.ops.views import UnknownQueue

    try:
        yield
    except (NightshiftError, UnknownQueue, UnknownSchedule, ValueError) as error:
        raise click.ClickException(str(error).strip("'\"")) from None


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str = "none") -> None:
    """Print *rows* as an aligned table of *columns*."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_text(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    click.echo("  ".join(column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip())


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        render()


# --- inspect -------------------------------------------------------------------------------------


@click.group()
def inspect() -> None:
    """What the platform is doing: active jobs, stats, queues, workers, scheduled jobs."""


@inspect.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def active(as_json: bool) -> None:
    """The jobs live workers are running now."""
    from nightshift.ops import views

    with _errors(), _context() as ctx:
        running = views.workers(ctx)["running"]
    _emit(
        running, as_json, lambda: table(running, ["job_id", "actor", "queue", "running_for_s"], empty="nothing running")
    )


@inspect.command()
@click.option("--window", type=click.Choice(["60", "360", "1440"]), default="60", help="Minutes.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def stats(window: str, as_json: bool) -> None:
    """Per actor: attempts, success and failure rates, p50/p95/p99 duration."""
    from nightshift.ops import views

    with _errors(), _context() as ctx:
        data = views.actors(ctx, minutes=int(window))["actors"]
    columns = ["actor", "attempts", "per_minute", "success_rate", "failure_rate", "p50_ms", "p95_ms", "p99_ms"]
    _emit(data, as_json, lambda: table(data, columns, empty=f"no attempt in the last {window} minutes"))


@inspect.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def queues(as_json: bool) -> None:
    """Every queue: ready, in flight, delayed, dead, oldest message age, backlog."""
    from nightshift.ops import views

    with _errors(), _context() as ctx:
        data = views.queues(ctx)
    _emit(
        data,
        as_json,
        lambda: table(data, ["queue", "ready", "in_flight", "delayed", "dead", "oldest_age_s", "backlog"]),
    )


@inspect.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def workers(as_json: bool) -> None:
    """Every live worker process."""
    from nightshift.ops import views

    with _errors(), _context() as ctx:
        data = views.workers(ctx)["workers"]
    columns = ["service", "host", "pid", "threads", "queues", "started_at", "heartbeat_age_s"]
    _emit(data, as_json, lambda: table(data, columns, empty="no live worker"))


@inspect.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def scheduled(as_json: bool) -> None:
    """Every schedule with its next fire, and the delayed messages of every queue (retries, delayed sends)."""
    from nightshift.ops import views
    from nightshift.ops.broker_view import delayed_messages

    with _errors(), _context() as ctx:
        schedules = views.schedules(ctx)
        delayed = [{**m, "queue": q} for q in ctx.queues for m in delayed_messages(ctx.broker, q)]
    data = {"schedules": schedules, "delayed": delayed}

    def render() -> None:
        table(schedules, ["name", "cron", "timezone", "paused", "next_fire", "last_outcome"], empty="no schedules")
        click.echo()
        table(delayed, ["job_id", "actor", "queue", "due_at", "retries"], empty="no delayed messages")

    _emit(data, as_json, render)


# --- one job -------------------------------------------------------------------------------------


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def job(job_id: str, as_json: bool) -> None:
    """Everything known about job JOB_ID: status, arguments, attempts, error, traceback, trace."""
    from nightshift.common.errors import UnknownJob
    from nightshift.ops import views

    with _errors(), _context() as ctx:
        found = views.job(ctx, job_id)
        if found is None:
            raise UnknownJob(job_id, where="job records")
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    for key in ("job_id", "actor", "queue", "status", "attempts", "trigger", "enqueued_at", "started_at"):
        click.echo(f"{key:<12} {_text(found[key])}")
    click.echo(f"{'finished_at':<12} {_text(found['finished_at'])}")
    click.echo(f"{'trace':<12} {found['trace_url'] or '-'}")
    click.echo(f"{'args':<12} {json.dumps(found['args'])}")
    if found["last_error"]:
        click.echo(f"{'error':<12} {found['last_error']}")
    click.echo()
    table(found["attempts_detail"], ["attempt", "outcome", "started_at", "duration_ms", "error"], empty="not run yet")
    if found["traceback"]:
        click.echo()
        click.echo(found["traceback"].rstrip())


@click.command()
@click.argument("job_id")
@click.option("--terminate", is_flag=True, help="Also abort it if it is running (at its next safe point).")
def revoke(job_id: str, terminate: bool) -> None:
    """Revoke job JOB_ID: if it has not started it never runs; with --terminate a running one is aborted."""
    from nightshift.ops import actions
    from nightshift.ops.jobs import parse_job_id

    with _errors(), _context() as ctx:
        actions.revoke_job(ctx.broker, ctx.sessions, _who(), str(parse_job_id(job_id)), terminate=terminate)
    click.echo(f"revoked {job_id}" + (" (terminate if running)" if terminate else ""))


@click.command()
@click.argument("queue")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(queue: str, yes: bool) -> None:
    """Drop every ready message of QUEUE (in-flight, delayed and dead ones stay)."""
    from nightshift.ops import actions, views

    with _errors(), _context() as ctx:
        ready = views.queue(ctx, queue)["ready"]
        if not yes:
            click.confirm(f"Drop the {ready} ready messages of {queue}?", abort=True)
        count = actions.purge(ctx.broker, ctx.sessions, _who(), queue)
    click.echo(f"purged {count} ready messages of {queue}")


# --- ops: accounts and dead letters by job id --------------------------------------------------------


@click.group()
def ops() -> None:
    """Operators, API tokens and the audit of their actions."""


@ops.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "operator"]), required=True)
@click.option("--password", help="Default: a generated one, printed once.")
def create_user(name: str, role: str, password: str | None) -> None:
    """Create operator NAME (or reset their role and password); there is no default password."""
    from nightshift.common import runtime
    from nightshift.ops import audit
    from nightshift.ops.accounts import create_operator
    from nightshift.ops.passwords import generate_password

    secret = password or generate_password()
    with _errors():
        create_operator(runtime.session_factory(), name, role, secret)
        who = _who()
        audit.record(
            runtime.session_factory(), who=who.name, via="cli", action="operator.create", target=name, role=role
        )
    click.echo(f"operator {name} ({role}) created" + ("" if password else f"; password: {secret}"))


@ops.command("create-token")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["read", "act", "publish"]), required=True)
def create_token(name: str, scopes: tuple[str, ...]) -> None:
    """Create API token NAME with the given scopes; it is printed once (stored only as a hash)."""
    from nightshift.common import runtime
    from nightshift.ops import audit
    from nightshift.ops.accounts import create_token as make_token

    who = _who()
    with _errors():
        token = make_token(runtime.session_factory(), name, scopes, by=who.name)
        audit.record(
            runtime.session_factory(), who=who.name, via="cli", action="token.create", target=name, scopes=list(scopes)
        )
    click.echo(token)


@ops.command("revoke-token")
@click.argument("name")
def revoke_token(name: str) -> None:
    """Revoke API token NAME."""
    from nightshift.common import runtime
    from nightshift.ops import audit
    from nightshift.ops.accounts import revoke_token as drop_token

    with _errors():
        drop_token(runtime.session_factory(), name)
        audit.record(runtime.session_factory(), who=_who().name, via="cli", action="token.revoke", target=name)
    click.echo(f"token {name} revoked")


@ops.command("audit")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def audit_log(limit: int, as_json: bool) -> None:
    """Who did what from the dashboard, the API or the CLI, newest first."""
    from nightshift.common import runtime
    from nightshift.ops import audit

    with runtime.session_factory()() as session:
        data = audit.entries(session, limit=limit)
    _emit(data, as_json, lambda: table(data, ["at", "who", "via", "action", "target", "detail"]))
