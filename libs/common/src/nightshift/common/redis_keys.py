"""The names of the broker's Redis keys, in one place.

Dramatiq's Redis broker (its ``dispatch.lua``) names every key after a
namespace and a queue; Nightshift adds two of its own. Code that reads the
broker's database from outside (queue depths, dead letters, tests,
benchmarks) takes the names from here instead of rebuilding the strings:

=====================================  =============================================
``<ns>:<queue>``                       list of ready message ids
``<ns>:<queue>.msgs``                  hash id → body of every message not yet acked
``<ns>:<queue>.DQ`` (+ ``.msgs``)      the delay queue, itself a queue
``<ns>:<queue>.XQ``                    sorted set of dead letters by time of death
``<ns>:<queue>.XQ.msgs``               hash id → body of the dead letters
``<ns>:<queue>.XQ.reasons``            hash id → why it died (Nightshift)
``<ns>:<queue>.wake``                  wake tokens, one per enqueue (Nightshift)
``<ns>:__acks__.<worker>.<queue>``     set of ids a worker fetched and has not acked
``<ns>:__heartbeats__``                sorted set of worker ids by last heartbeat
``<ns>:__worker__.<worker>``           hash: a live worker's service, host, pid… (Nightshift)
``<ns>:__running__.<worker>``          hash message id → what a worker runs now (Nightshift)
``<ns>:__revoked__.<job id>``          a revoked job and how (Nightshift)
``<ns>:__stopped__.<worker>``          a worker that stopped cleanly, for an hour (Nightshift)
=====================================  =============================================
"""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.common import dq_name, q_name

#: Dramatiq's default namespace, the one every Nightshift broker uses.
NAMESPACE = "dramatiq"


@dataclass(frozen=True)
class RedisKeys:
    """Key names in one broker namespace.

    Parameters:
      namespace: The prefix of every key (``RedisBroker.namespace``).
    """

    namespace: str = NAMESPACE

    def key(self, name: str) -> str:
        """The key *name* in this namespace."""
        return f"{self.namespace}:{name}"

    def queue(self, queue_name: str) -> str:
        """The list of ready message ids of *queue_name* (a queue or a delay queue)."""
        return self.key(queue_name)

    def messages(self, queue_name: str) -> str:
        """The hash of the bodies of *queue_name*'s messages that are not acked yet."""
        return f"{self.queue(queue_name)}.msgs"

    def delayed(self, queue_name: str) -> str:
        """The list of ready ids of *queue_name*'s delay queue."""
        return self.queue(dq_name(queue_name))

    def delayed_messages(self, queue_name: str) -> str:
        """The hash of the bodies of *queue_name*'s delayed messages."""
        return self.messages(dq_name(queue_name))

    def dead(self, queue_name: str) -> str:
        """The sorted set of *queue_name*'s dead letters (a delay queue's die in its queue's)."""
        return f"{self.queue(q_name(queue_name))}.XQ"

    def dead_messages(self, queue_name: str) -> str:
        """The hash of the bodies of *queue_name*'s dead letters."""
        return f"{self.dead(queue_name)}.msgs"

    def dead_reasons(self, queue_name: str) -> str:
        """The hash of why each of *queue_name*'s dead letters died."""
        return f"{self.dead(queue_name)}.reasons"

    def wake(self, queue_name: str) -> str:
        """The list every enqueue on *queue_name* pushes a token to, for idle consumers."""
        return f"{self.queue(queue_name)}.wake"

    def acks(self, worker_id: str, queue_name: str) -> str:
        """The set of *queue_name* message ids that worker *worker_id* fetched and has not acked."""
        return self.key(f"__acks__.{worker_id}.{queue_name}")

    def heartbeats(self) -> str:
        """The sorted set of worker ids by the time of their last heartbeat."""
        return self.key("__heartbeats__")

    def worker(self, worker_id: str) -> str:
        """The hash describing live worker *worker_id* (service, host, pid, threads, …)."""
        return self.key(f"__worker__.{worker_id}")

    def running(self, worker_id: str) -> str:
        """The hash of the messages worker *worker_id* is running now, by message id."""
        return self.key(f"__running__.{worker_id}")

    def stopped(self, worker_id: str) -> str:
        """The key that marks worker *worker_id* as stopped cleanly (not lost)."""
        return self.key(f"__stopped__.{worker_id}")

    def revoked(self, job_id: str) -> str:
        """The key that marks job *job_id* as revoked."""
        return self.key(f"__revoked__.{job_id}")

    def crashes(self, job_id: str) -> str:
        """Starts of job *job_id* that never finished: its process died (memory-bound profile)."""
        return self.key(f"__crashes__.{job_id}")

    def pattern(self, suffix: str) -> str:
        """A ``SCAN`` pattern for every key of this namespace ending in *suffix*."""
        return self.key(f"*{suffix}")
