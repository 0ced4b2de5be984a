"""Redis high availability: clients that find the primary through Sentinel, and replicated enqueues.

With ``REDIS_SENTINELS`` set (``host:port,host:port,…``), every Redis client of
the platform — the broker, the application client, readiness checks, the
scheduler's lease — asks the sentinels for the current primary of
``REDIS_SENTINEL_MASTER`` and follows it when a failover promotes a replica
(redis-py's :class:`redis.sentinel.Sentinel`: a connection that finds a demoted
primary or loses its server asks again). ``REDIS_URL`` still gives the database
number and credentials; its host and port are then not used.

Replication is asynchronous: a primary that dies right after acknowledging an
enqueue may not have passed it on, and the promoted replica never saw it. With
``REDIS_WAIT_REPLICAS=n`` the broker sends ``WAIT n timeout`` on the enqueue's
own connection and refuses (:class:`NotReplicated`) an enqueue that fewer than
*n* replicas acknowledged in ``REDIS_WAIT_TIMEOUT_MS``: an accepted message
survives the loss of the primary. The price is one replica round trip per
enqueue (about 0.1 ms on one host, a network round trip across zones) and
publishers that fail while no replica answers. Workers' own writes (fetch, ack)
are not waited for: a fetch or an ack lost in a failover means the message runs
again, which idempotent tasks absorb.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import parse_url
from redis.sentinel import Sentinel

from nightshift.common.errors import TransientError
from nightshift.common.redis_broker import WAKE_TOKENS, NightshiftRedisBroker
from nightshift.common.redis_client import connection_options
from nightshift.common.settings import CommonSettings, with_redis_db

#: How long a sentinel may take to answer which server is the primary.
SENTINEL_TIMEOUT_S = 1.0


class NotReplicated(TransientError):
    """Fewer replicas than ``REDIS_WAIT_REPLICAS`` acknowledged an enqueue in time."""


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """``"host:port,host:port"`` as a list of addresses.

    Raises:
      ValueError: Naming the entry that is not ``host:port``.
    """
    addresses = []
    for entry in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{entry!r} is not host:port")
        addresses.append((host, int(port)))
    if not addresses:
        raise ValueError("no sentinel address")
    return addresses


def redis_client(settings: CommonSettings, *, db: int | None = None, **options: Any) -> redis.Redis[bytes]:
    """A client on the platform's Redis: through Sentinel when configured, else ``REDIS_URL``.

    Every Redis client of the platform is built here, with the TLS material of
    ``REDIS_TLS_*`` (see :mod:`nightshift.common.redis_client`).

    It gets the deployment's timeouts (``REDIS_SOCKET_TIMEOUT_S``,
    ``REDIS_CONNECT_TIMEOUT_S``, ``REDIS_HEALTH_CHECK_INTERVAL_S``) unless *options*
    name their own (a readiness probe's one second).

    Parameters:
      db: The database (``REDIS_URL``'s by default).
      options: More connection options (``socket_timeout``…).

    Raises:
      ConfigurationError: TLS material given for a URL that does not use TLS.
    """
    options = {**settings.redis_socket_options(), **options}
    if not settings.redis_sentinels:
        url = settings.redis_url if db is None else with_redis_db(settings.redis_url, db)
        return redis.Redis.from_url(url, **connection_options(url, settings.redis_tls), **options)
    connection = {
        key: value
        for key, value in parse_url(settings.redis_url).items()
        if key not in {"host", "port", "path", "connection_class"}
    }
    if settings.redis_url.startswith("rediss://"):
        connection["ssl"] = True
        connection.update(connection_options(settings.redis_url, settings.redis_tls))
    if db is not None:
        connection["db"] = db
    sentinel = Sentinel(
        parse_sentinels(settings.redis_sentinels),
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S},
    )
    return sentinel.master_for(settings.redis_sentinel_master, **{**connection, **options})


class ReplicatedRedisBroker(NightshiftRedisBroker):
    """A broker whose enqueues return only once *wait_replicas* replicas have them.

    Parameters:
      wait_replicas: Replicas that must acknowledge each enqueue.
      wait_timeout_ms: How long to wait for them before refusing the enqueue.
    """

    def __init__(self, *, wait_replicas: int, wait_timeout_ms: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms

    def do_enqueue(self, queue_name: str, message_id: str, data: bytes) -> None:
        """Enqueue, then ``WAIT`` on the same connection (a pipeline), so it covers this write.

        Raises:
          NotReplicated: Fewer replicas acknowledged it in time (the message may still
            be on the primary: the publisher should treat it as unknown and may resend).
        """
        with self.client.pipeline(transaction=False) as pipe:
            self._enqueue_script(
                keys=[self.keys.queue(queue_name), self.keys.messages(queue_name), self.keys.wake(queue_name)],
                args=[message_id, data, WAKE_TOKENS],
                client=pipe,
            )
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            acknowledged = int(pipe.execute()[-1])
        if acknowledged < self.wait_replicas:
            raise NotReplicated(
                f"message {message_id} acknowledged by {acknowledged} of {self.wait_replicas} replicas "
                f"within {self.wait_timeout_ms} ms"
            )
