"""Dead letters are shown and addressed by job id; an unknown id is an error, never "0 of 1"."""

from __future__ import annotations

import json
import uuid
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Engine

from nightshift.common import dead_letters
from nightshift.common.errors import NotFound, UnknownJob
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from tests.support.processes import nightshift

pytestmark = pytest.mark.integration

QUEUE = "dlq_high"
#: How many times each job ran, by the job argument.
RUNS: dict[str, int] = {}


@dramatiq.actor(queue_name=QUEUE, actor_name="always_missing")
def always_missing(job: str) -> None:
    RUNS[job] = RUNS.get(job, 0) + 1
    raise NotFound(f"row {job} does not exist")


def _kill(broker: NightshiftRedisBroker, run_worker: Any, *jobs: str) -> list[str]:
    run_worker({QUEUE})
    ids = [always_missing.send(job).message_id for job in jobs]
    wait_for(lambda: len(dead_letters.list_dead_letters(broker, QUEUE)) == len(jobs), what="all dead")
    return ids


def test_list_shows_job_ids_and_replay_accepts_just_the_job_id(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    [job_id] = _kill(broker, run_worker, "cli-replay")

    listed = nightshift("dead-letters", "list", QUEUE, "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["job_id"] == job_id
    assert (entry["actor"], entry["queue"], entry["error_type"]) == ("always_missing", QUEUE, "NotFound")
    assert entry["reason"] == "row cli-replay does not exist"
    assert entry["dead_at"]
    table = nightshift("dead-letters", "list", QUEUE)
    assert job_id in table.stdout and "NotFound: row cli-replay does not exist" in table.stdout

    replayed = nightshift("dead-letters", "replay", job_id)

    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 of 1" in replayed.stdout
    wait_for(lambda: RUNS["cli-replay"] == 2, what="second run after the replay")
    wait_for(lambda: len(dead_letters.list_dead_letters(broker, QUEUE)) == 1, what="dead again")


def test_an_unknown_job_id_is_an_error_and_nothing_changes(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    [job_id] = _kill(broker, run_worker, "unknown-id")
    unknown = str(uuid.uuid4())

    for command in (("replay", QUEUE, job_id, unknown), ("replay", unknown), ("delete", QUEUE, unknown)):
        result = nightshift("dead-letters", *command)
        assert result.returncode != 0, command
        assert unknown in result.stderr, result.stderr
        assert "replayed" not in result.stdout
    not_an_id = nightshift("dead-letters", "replay", QUEUE, "1700000000000-0")
    assert not_an_id.returncode != 0 and "is not a job id" in not_an_id.stderr

    with pytest.raises(UnknownJob, match=f"{unknown}.*{QUEUE}"):
        dead_letters.replay(broker, QUEUE, [job_id, unknown])
    assert [letter.job_id for letter in dead_letters.list_dead_letters(broker, QUEUE)] == [job_id]
    assert RUNS["unknown-id"] == 1


def test_find_delete_replay_all_and_purge_by_job_id(
    broker: NightshiftRedisBroker, run_worker: Any, clean_db: Engine
) -> None:
    first, second, third, fourth = _kill(broker, run_worker, "d1", "d2", "d3", "d4")

    assert dead_letters.find_dead_letter_queue(broker, second) == QUEUE
    with pytest.raises(UnknownJob):
        dead_letters.find_dead_letter_queue(broker, str(uuid.uuid4()))
    deleted = nightshift("dead-letters", "delete", first, "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"deleted": 1}
    assert {letter.job_id for letter in dead_letters.list_dead_letters(broker, QUEUE)} == {second, third, fourth}

    replayed = nightshift("dead-letters", "replay", QUEUE, "--all", "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == {"replayed": 3, "queue": QUEUE}
    wait_for(lambda: all(RUNS[job] == 2 for job in ("d2", "d3", "d4")), what="three replays ran")
    assert RUNS["d1"] == 1
    wait_for(lambda: len(dead_letters.list_dead_letters(broker, QUEUE)) == 3, what="dead again")

    purged = nightshift("dead-letters", "purge", QUEUE)
    assert purged.returncode == 0, purged.stderr
    assert "purged 3" in purged.stdout
    assert dead_letters.list_dead_letters(broker, QUEUE) == []
