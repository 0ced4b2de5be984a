"""Contracts of the GDPR workflow: the part every service contributes to an export or an erasure.

A request (``gdpr_requests``) is split into one part per service in
:data:`GDPR_SERVICES`; each service consumes its two part contracts below with
an actor of its own (``gdpr_export_<service>``, ``gdpr_erase_<service>``), so
the users service that runs the workflow never imports another service's code.
The payload is the request id only: the part reads the subject from the request
row, so no message carries the user's id.

Adding a service that holds personal data: add its name to :data:`GDPR_SERVICES`
and declare ``contract_actor(export_part("<svc>"))`` and
``contract_actor(erase_part("<svc>"))`` in its ``actors.py`` (see ``docs/gdpr.md``).
"""

from __future__ import annotations

from functools import cache

from pydantic import Field

from nightshift.common.contracts import Contract, Payload
from nightshift.common.lanes import Lane

#: Every service that holds part of a user's data, in the order the archive lists them.
GDPR_SERVICES = ("users", "posts", "media", "notifications")

#: A part may copy a user's originals or delete thousands of rows: half an hour is a hung worker.
PART_TIME_LIMIT_MS = 30 * 60 * 1000


class GdprRequestRef(Payload):
    """The request a message is about (``gdpr_requests.id``)."""

    request_id: int = Field(gt=0)


@cache
def export_part(service: str) -> Contract[GdprRequestRef]:
    """The contract of *service*'s export part: write its share of the user's data to storage.

    Raises:
      ValueError: *service* is not in :data:`GDPR_SERVICES`.
    """
    return Contract(
        _known(service), f"gdpr_export_{service}", Lane.HIGH, GdprRequestRef, options={"time_limit": PART_TIME_LIMIT_MS}
    )


@cache
def erase_part(service: str) -> Contract[GdprRequestRef]:
    """The contract of *service*'s erasure part: erase or anonymise its share of the user's data.

    Raises:
      ValueError: *service* is not in :data:`GDPR_SERVICES`.
    """
    return Contract(
        _known(service), f"gdpr_erase_{service}", Lane.HIGH, GdprRequestRef, options={"time_limit": PART_TIME_LIMIT_MS}
    )


def _known(service: str) -> str:
    if service not in GDPR_SERVICES:
        raise ValueError(f"{service!r} takes no part in GDPR requests (parts: {', '.join(GDPR_SERVICES)})")
    return service
