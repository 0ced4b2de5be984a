"""``nightshift gdpr export | erase | status | proof``: a user's data requests, for operators.

``export`` and ``erase`` record the request (who asked: ``--by``, the operator's
login by default) and its event in one transaction; the outbox relay of any
running worker delivers it. ``status`` shows each service's part; ``proof``
prints the signed completion record of a completed request.
"""

from __future__ import annotations

import getpass
import json
import re
from typing import Any

import click

from nightshift.common.errors import NightshiftError


def _default_operator() -> str:
    login = re.sub(r"[^A-Za-z0-9._-]", "_", getpass.getuser())[:100] or "unknown"
    return f"operator:{login}"


@click.group()
def gdpr() -> None:
    """Export or erase a user's data across every service; follow a request; fetch its proof."""


@gdpr.command()
@click.argument("user_id", type=click.IntRange(min=1))
@click.option("--by", "requested_by", default=None, help="Who asks: 'subject' or 'operator:<login>' (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the request as JSON.")
def export(user_id: int, requested_by: str | None, as_json: bool) -> None:
    """Export USER_ID's data: one archive, linked and emailed to the user."""
    _request("export", user_id, requested_by or _default_operator(), as_json)


@gdpr.command()
@click.argument("user_id", type=click.IntRange(min=1))
@click.option("--by", "requested_by", default=None, help="Who asks: 'subject' or 'operator:<login>' (default: you).")
@click.option("--json", "as_json", is_flag=True, help="Print the request as JSON.")
def erase(user_id: int, requested_by: str | None, as_json: bool) -> None:
    """Erase USER_ID's data everywhere; asking again for the same user changes nothing."""
    _request("erasure", user_id, requested_by or _default_operator(), as_json)


@gdpr.command()
@click.argument("request_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(request_id: int, as_json: bool) -> None:
    """REQUEST_ID's state: who asked and when, the deadline, and each service's part."""
    from nightshift.common import runtime
    from nightshift.common.db.models import GdprRequest
    from nightshift.common.gdpr.workflow import acknowledgements, part_message_id

    with runtime.session_factory()() as session:
        request = session.get(GdprRequest, request_id)
        if request is None:
            raise click.ClickException(f"no GDPR request {request_id}")
        parts = acknowledgements(session, request_id)
    data: dict[str, Any] = {
        "request_id": request.id,
        "kind": request.kind,
        "status": request.status,
        "requested_by": request.requested_by,
        "requested_at": request.requested_at.isoformat(),
        "deadline_at": request.deadline_at.isoformat(),
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
        "parts": {
            service: {**part, "job_id": part_message_id(request.id, request.kind, service)}
            for service, part in parts.items()
        },
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"{request.kind} {request.id}: {request.status} (asked by {request.requested_by} at {data['requested_at']})"
    )
    click.echo(
        f"  deadline {data['deadline_at']}" + (f", completed {data['completed_at']}" if request.completed_at else "")
    )
    for service, part in data["parts"].items():
        counts = ", ".join(f"{name} {count}" for name, count in part["counts"].items())
        click.echo(f"  {service:<14} {part['status']:<8} {part['job_id']}  {counts}")


@gdpr.command()
@click.argument("request_id", type=click.IntRange(min=1))
def proof(request_id: int) -> None:
    """The signed completion record of REQUEST_ID (no personal data in it), as JSON."""
    from nightshift.common import runtime
    from nightshift.common.gdpr.proof import proof_of
    from nightshift.common.gdpr.settings import GdprSettings

    key = runtime.service_settings(GdprSettings).key(runtime.settings().environment)
    try:
        with runtime.session_factory()() as session:
            signed = proof_of(session, request_id, key)
    except NightshiftError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(signed, indent=2, sort_keys=True))


def _request(kind: str, user_id: int, requested_by: str, as_json: bool) -> None:
    from nightshift.common import runtime
    from nightshift.common.db.engine import transaction
    from nightshift.common.gdpr.requests import request_erasure, request_export
    from nightshift.common.gdpr.settings import GdprSettings

    settings = runtime.service_settings(GdprSettings)
    key = settings.key(runtime.settings().environment)
    try:
        with transaction(runtime.session_factory()) as session:
            if kind == "export":
                request, created = (
                    request_export(session, user_id, requested_by=requested_by, key=key, deadline=settings.deadline()),
                    True,
                )
            else:
                request, created = request_erasure(
                    session, user_id, requested_by=requested_by, key=key, deadline=settings.deadline()
                )
            data = {"request_id": request.id, "kind": request.kind, "status": request.status, "created": created}
    except NightshiftError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(data))
    elif created:
        click.echo(
            f"{kind} request {data['request_id']} recorded; follow it with: nightshift gdpr status {data['request_id']}"
        )
    else:
        click.echo(f"an erasure of this user was asked already: request {data['request_id']} ({data['status']})")
