"""Redis ACL users per service, generated from the installed services' specs.

Each service's user may consume its own queues (every key of them, its
workers' ack sets) and reach of the other services' queues only the keys an
enqueue touches (the ready list, the bodies, the wake list, the delay queue):
never their dead letters, their reasons or the ack sets of their workers. The
ops service, which lists, replays and purges every queue, may touch every
broker key. Dangerous commands (KEYS, FLUSHDB, CONFIG, DEBUG…) are refused to all.

Enqueue-only cannot be expressed: the broker enqueues with a Lua script, and
Redis checks a script's declared keys for full access (Redis 7's write-only
``%W~`` patterns do not let ``EVALSHA`` name a key), so a service that can
enqueue to a queue can also read its ready messages. ``docs/security.md`` lists
this and the other limits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from nightshift.common.redis_keys import NAMESPACE
from nightshift.common.service import ServiceSpec

#: The commands a Nightshift process sends: data, scripts (every broker operation is a
#: Lua script), SCAN, transactions and connection handling; never the dangerous ones.
COMMANDS = "-@all +@read +@write +@keyspace +@scripting +@transaction +@connection -@dangerous"

#: Keys every worker writes whatever its service: heartbeats, its description and
#: running messages, revocation marks (read before each message).
SHARED_KEYS = ("__heartbeats__", "__worker__.*", "__running__.*", "__revoked__.*")

#: Services that inspect and repair every queue (lists, replays, purges).
ALL_QUEUES = frozenset({"ops"})


def user_name(service: str) -> str:
    """The Redis user of *service*."""
    return f"nightshift-{service}"


def acl_rules(
    specs: Iterable[ServiceSpec],
    *,
    app_keys: Mapping[str, tuple[str, ...]] | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, str]:
    """The ACL rules of each service's user (without its password), by user name.

    Parameters:
      specs: The installed services.
      app_keys: Per service, patterns of its keys in the application Redis (locks,
        caches, leases), which share the ACL with the broker's keys.
      namespace: The broker's key namespace.
    """
    specs = list(specs)
    every_queue = sorted(queue for spec in specs for queue in spec.queues)
    rules = {}
    for spec in specs:
        # Dramatiq's dispatch script declares only the namespace as its key and names the
        # real keys inside, where each command is checked against the patterns below.
        patterns = [f"~{namespace}", *(f"~{namespace}:{key}" for key in SHARED_KEYS)]
        if spec.name in ALL_QUEUES:
            patterns.append(f"~{namespace}:*")
        else:
            for queue in spec.queues:
                patterns += [f"~{namespace}:{queue}*", f"~{namespace}:__acks__.*.{queue}*"]
            for queue in every_queue:
                if queue not in spec.queues:
                    patterns += [f"~{namespace}:{queue}", f"~{namespace}:{queue}.msgs"]
                    patterns += [
                        f"~{namespace}:{queue}.wake",
                        f"~{namespace}:{queue}.DQ",
                        f"~{namespace}:{queue}.DQ.msgs",
                    ]
        patterns += [f"~{pattern}" for pattern in (app_keys or {}).get(spec.name, ())]
        rules[user_name(spec.name)] = " ".join(["on", "resetkeys", "resetchannels", *patterns, COMMANDS])
    return rules


def acl_file(rules: Mapping[str, str], passwords: Mapping[str, str]) -> str:
    """An ACL file (``aclfile`` in redis.conf): one ``user`` line per service, passwords as SHA-256.

    Parameters:
      rules: From :func:`acl_rules`.
      passwords: By user name.

    Raises:
      KeyError: Naming a user without a password.
    """
    lines = []
    for user, rule in rules.items():
        if user not in passwords:
            raise KeyError(f"no password for Redis user {user}")
        digest = hashlib.sha256(passwords[user].encode()).hexdigest()
        lines.append(f"user {user} {rule} #{digest}")
    return "\n".join(lines) + "\n"
