"""``nightshift notifications uncertain | resend-uncertain``: bulk recipients a crash left uncertain."""

from __future__ import annotations

import click


@click.group()
def notifications() -> None:
    """Bulk email recipients whose request was cut short by a crash (see docs/notifications.md)."""


@notifications.command()
def uncertain() -> None:
    """Campaigns with recipients still in flight (``sending``) or ``uncertain``, oldest request first."""
    from nightshift.common import runtime
    from nightshift.notifications.bulk_reconcile import in_flight

    rows = in_flight(runtime.session_factory())
    if not rows:
        click.echo("no bulk recipient in flight or uncertain")
        return
    for row in rows:
        alerted = "  (alerted)" if row.alerted else ""
        click.echo(f"{row.campaign}  {row.status:<9} {row.recipients:>7}  since {row.oldest.isoformat()}{alerted}")


@notifications.command("resend-uncertain")
@click.argument("campaign")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def resend_uncertain(campaign: str, yes: bool) -> None:
    """Send CAMPAIGN's uncertain recipients once more (a worker sends them).

    Use it once SendGrid's activity feed shows they did not get the email: one who
    did, and whose events were lost, gets it twice.
    """
    from nightshift.common import runtime
    from nightshift.common.broker import build_broker
    from nightshift.common.contracts.notifications import SEND_BULK_EMAIL
    from nightshift.notifications.bulk_reconcile import resend_batches

    batches = list(resend_batches(runtime.session_factory(), campaign))
    recipients = sum(len(batch.recipients) for batch in batches)
    if not batches:
        raise click.ClickException(f"campaign {campaign!r} has no uncertain recipient")
    if not yes:
        click.confirm(f"Send campaign {campaign} again to {recipients} uncertain recipients?", abort=True)
    broker = build_broker(runtime.settings(), set_global=False)
    try:
        for batch in batches:
            message = SEND_BULK_EMAIL.send(batch, broker=broker)
            click.echo(f"{message.message_id} {message.actor_name} -> {message.queue_name} ({len(batch.recipients)})")
    finally:
        broker.record_writer.close()
        broker.close()
