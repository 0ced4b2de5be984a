"""What the platform itself holds about a user: queued work, relayed events, job records, old requests.

Run by the erasure's finishing step, after every service erased its part:

* **queued work** — every message in the broker's Redis (ready, fetched, delayed or
  dead) whose payload names the user in a :data:`SUBJECT_FIELDS` field is revoked
  (a worker that already holds it skips it) and removed;
* **outbox events** naming the user, relayed or not, are deleted (an unsent one
  would act on a user who no longer exists);
* **job records** keep the row (what ran, when, how it ended) with their arguments
  replaced by ``{"user_id": "erased"}`` and the id taken out of their errors;
* **earlier requests** of the same subject keep their audit (who asked, when, the
  digest) and lose the id, and their export archives are deleted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, text, update
from sqlalchemy.orm import Session

from nightshift.common.db.models import GdprRequest
from nightshift.common.errors import UnknownJob
from nightshift.common.gdpr.parts import request_prefix
from nightshift.common.locate import SCAN_COUNT, known_queues
from nightshift.common.redis_keys import RedisKeys
from nightshift.common.revocation import revoke
from nightshift.common.storage import Storage

if TYPE_CHECKING:
    from dramatiq.brokers.redis import RedisBroker

#: Payload fields that hold a user's id (contracts and events name the user so).
SUBJECT_FIELDS = ("user_id",)

#: Payload fields listing several users, each entry naming one in a :data:`SUBJECT_FIELDS`
#: field (a campaign batch's ``recipients``): the user's entry is stripped, the others kept.
SUBJECT_LISTS = ("recipients",)

#: What replaces the user's id in the arguments of kept job records.
ERASED = "erased"


def names_subject(payload: Any, user_id: int) -> bool:
    """Whether a message's keyword arguments (or an event payload) name *user_id*."""
    if not isinstance(payload, Mapping):
        return False
    return any(_same_id(payload.get(name), user_id) for name in SUBJECT_FIELDS)


def drop_queued_messages(broker: RedisBroker, user_id: int) -> int:
    """Revoke and remove every message of every queue whose payload names *user_id*; return how many.

    Ready and delayed messages are taken out of their queue; a message a worker has
    fetched loses its body and is revoked, so the worker skips it; a dead letter is
    deleted with its reason.
    """
    keys = RedisKeys(broker.namespace)
    client = broker.client
    dropped = 0
    for queue in known_queues(broker):
        places = (
            (keys.messages(queue), keys.queue(queue), None),
            (keys.delayed_messages(queue), keys.delayed(queue), None),
            (keys.dead_messages(queue), None, keys.dead(queue)),
        )
        for bodies, ready, dead in places:
            for redis_id, job_id in _naming(client, bodies, user_id):
                if job_id is not None:
                    # UnknownJob: acked by its worker in between, nothing left to stop.
                    with contextlib.suppress(UnknownJob):
                        revoke(broker, job_id)
                with client.pipeline(transaction=True) as pipe:
                    pipe.hdel(bodies, redis_id)
                    if ready is not None:
                        pipe.lrem(ready, 0, redis_id)
                    if dead is not None:
                        pipe.zrem(dead, redis_id)
                        pipe.hdel(keys.dead_reasons(queue), redis_id)
                    pipe.execute()
                dropped += 1
    return dropped


def _naming(client: Any, hash_key: str, user_id: int) -> Iterator[tuple[str, str | None]]:
    found = []
    for redis_id, body in client.hscan_iter(hash_key, count=SCAN_COUNT):
        try:
            data = json.loads(body)
        except ValueError:
            continue
        if isinstance(data, dict) and names_subject(data.get("kwargs"), user_id):
            job_id = data.get("message_id")
            found.append((redis_id.decode(), job_id if isinstance(job_id, str) else None))
    yield from found


def delete_outbox_events(session: Session, user_id: int) -> int:
    """Delete the outbox events (relayed or not) whose payload names *user_id*; return how many."""
    statement = text("DELETE FROM outbox_events WHERE " + _json_names("payload"))  # noqa: S608 - constants
    return int(session.execute(statement, {"id": str(user_id)}).rowcount)  # type: ignore[attr-defined]


def strip_job_records(session: Session, user_id: int) -> int:
    """Strip the user from the job records (and their audit rows) that name them; return how many records.

    The rows stay — what ran, when, how it ended — with their arguments replaced
    by ``{"user_id": "erased"}`` (other arguments, such as an idempotency key,
    may embed the id) and the id replaced by ``erased`` in their errors. A record
    whose arguments list several users (:data:`SUBJECT_LISTS`) keeps the others: the
    user's entry becomes ``{"user_id": "erased"}``.
    """
    erased_entry = json.dumps(dict.fromkeys(SUBJECT_FIELDS, ERASED))
    params = {"id": str(user_id), "args": erased_entry, "erased": ERASED}
    stripped = list(
        session.scalars(
            text(
                "UPDATE job_records SET args = CAST(:args AS jsonb), last_error = replace(last_error, :id, :erased) "  # noqa: S608
                f"WHERE {_json_names('args')} RETURNING message_id"
            ),
            params,
        ).all()
    )
    for field in SUBJECT_LISTS:
        stripped += session.scalars(_strip_list_entries(field), {**params, "user_id": user_id}).all()
    if stripped:
        session.execute(
            text(
                "UPDATE task_audit SET error = replace(error, :id, :erased) "
                "WHERE message_id = ANY(:ids) AND strpos(error, :id) > 0"
            ),
            {**params, "ids": list(stripped)},
        )
    return len(stripped)


def forget_subject_requests(session: Session, storage: Storage, subject_digest: str) -> int:
    """Drop the user id from every request of the subject and delete their export archives; return how many."""
    requests = session.scalars(
        update(GdprRequest)
        .where(GdprRequest.subject_digest == subject_digest)
        .values(user_id=None, link_url=None, archive_key=None)
        .returning(GdprRequest.id)
    ).all()
    for request_id in requests:
        storage.delete_many(list(storage.list(request_prefix(request_id))))
    return len(requests)


def _strip_list_entries(field: str) -> TextClause:
    """UPDATE replacing the user's entries of the job records' *field* list by ``:args``."""
    entry_names = " OR ".join(f"e.item->>'{name}' = :id" for name in SUBJECT_FIELDS)
    listed = " OR ".join(
        f"args->'{field}' @> jsonb_build_array(jsonb_build_object('{name}', CAST(:user_id AS bigint)))"
        for name in SUBJECT_FIELDS
    )
    return text(
        f"UPDATE job_records SET last_error = replace(last_error, :id, :erased), "  # noqa: S608 - constants
        f"args = jsonb_set(args, '{{{field}}}', ("
        f"SELECT jsonb_agg(CASE WHEN {entry_names} THEN CAST(:args AS jsonb) ELSE e.item END ORDER BY e.n) "
        f"FROM jsonb_array_elements(args->'{field}') WITH ORDINALITY AS e(item, n))) "
        f"WHERE {listed} RETURNING message_id"
    )


def _json_names(column: str) -> str:
    """SQL matching rows whose JSON *column* names the user (bound as ``:id``, a string)."""
    return "(" + " OR ".join(f"{column}->>'{name}' = :id" for name in SUBJECT_FIELDS) + ")"


def _same_id(value: Any, user_id: int) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == user_id
    return isinstance(value, str) and value.strip() == str(user_id)
