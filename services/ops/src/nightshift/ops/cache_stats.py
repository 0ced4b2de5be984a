"""``collect_cache_stats``: the application cache's hits, size and key families, with TTL advice.

Each run reads ``INFO`` (hits and misses are server counters: the run stores them and
reports the difference since the previous run's end, so its own reads never count),
``DBSIZE`` and memory, then samples up to ``OPS_CACHE_SAMPLE_KEYS`` keys with ``SCAN``
(never ``KEYS``). A key's *family* is its name with every segment that holds a digit
replaced by ``*`` (``feed:42:page:3`` → ``feed:*:page:*``). Per family: keys sampled,
share without a TTL, the remaining TTLs' median and p90, and the idle time's p90
(``OBJECT IDLETIME``: how long since a key was last read or written).

TTL recommendation (a heuristic, shown on the dashboard): a cached value read again
within its idle time should outlive it, so the target TTL is twice the family's p90
idle time, clamped to [1 min, 7 days]. Then:

- more than half the keys have no TTL → ``set a TTL of ~target`` (they never expire);
- median remaining TTL above 4 x target → ``shorten to ~target`` (kept long after use);
- median remaining TTL below target / 4 → ``lengthen to ~target`` (expire while in use);
- otherwise ``keep``.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from typing import Any

import redis

#: Bounds of the recommended TTL, seconds.
MIN_TTL_S = 60
MAX_TTL_S = 7 * 86_400
#: A segment holding a digit is an id, a date or a page: it is generalised to ``*``.
_VARYING = re.compile(r"\d")


def family(key: str) -> str:
    """The key's family: segments holding a digit replaced by ``*``."""
    return ":".join("*" if _VARYING.search(part) else part for part in key.split(":"))


def counters(client: redis.Redis[bytes]) -> dict[str, int]:
    """The server's hit and miss counters now."""
    stats: Any = client.info("stats")
    return {"hits": int(stats.get("keyspace_hits", 0)), "misses": int(stats.get("keyspace_misses", 0))}


def collect(client: redis.Redis[bytes], *, sample: int, previous: dict[str, Any] | None) -> dict[str, Any]:
    """One run's statistics; *previous* is the last run's result (its ``end_counters``).

    Returns:
      ``hits``, ``misses``, ``hit_ratio`` since the last run (None on a first run or
      after a server restart), ``keys``, ``used_memory``, ``families`` (with their
      recommendation) and the counters to subtract next time.
    """
    start = counters(client)
    memory: Any = client.info("memory")
    keys_total = int(client.dbsize())
    sampled: list[bytes] = []
    for key in client.scan_iter(count=500):
        sampled.append(key)
        if len(sampled) >= sample:
            break
    with client.pipeline(transaction=False) as pipe:
        for key in sampled:
            pipe.pttl(key)
            pipe.object("idletime", key)
        answers = pipe.execute(raise_on_error=False)
    by_family: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for index, key in enumerate(sampled):
        ttl_ms, idle = answers[2 * index], answers[2 * index + 1]
        if not isinstance(ttl_ms, int) or ttl_ms == -2:
            continue  # expired between SCAN and PTTL
        by_family[family(key.decode(errors="replace"))].append((ttl_ms, idle if isinstance(idle, int) else None))
    end = counters(client)
    hits = misses = None
    base = (previous or {}).get("end_counters")
    if base and start["hits"] >= base["hits"] and start["misses"] >= base["misses"]:
        hits, misses = start["hits"] - base["hits"], start["misses"] - base["misses"]
    return {
        "hits": hits,
        "misses": misses,
        "hit_ratio": round(hits / (hits + misses), 4)
        if hits is not None and misses is not None and hits + misses
        else None,
        "keys": keys_total,
        "used_memory": int(memory.get("used_memory", 0)),
        "sampled": len(sampled),
        "families": sorted(
            (describe_family(name, values) for name, values in by_family.items()),
            key=lambda item: -int(item["sampled"]),
        ),
        "end_counters": end,
    }


def describe_family(name: str, values: list[tuple[int, int | None]]) -> dict[str, Any]:
    """A family's TTL distribution and the recommendation of the heuristic above."""
    ttls_s = sorted(ttl / 1000 for ttl, _ in values if ttl >= 0)
    idles = sorted(idle for _, idle in values if idle is not None)
    no_ttl = sum(1 for ttl, _ in values if ttl == -1) / len(values)
    median_ttl = statistics.median(ttls_s) if ttls_s else None
    idle_p90 = _p90(idles)
    target = min(max(2 * (idle_p90 or 0), MIN_TTL_S), MAX_TTL_S)
    if no_ttl > 0.5:
        advice = f"set a TTL of ~{_human(target)}"
    elif median_ttl is not None and median_ttl > 4 * target:
        advice = f"shorten to ~{_human(target)}"
    elif median_ttl is not None and median_ttl < target / 4:
        advice = f"lengthen to ~{_human(target)}"
    else:
        advice = "keep"
    return {
        "family": name,
        "sampled": len(values),
        "no_ttl_share": round(no_ttl, 3),
        "ttl_median_s": round(median_ttl, 1) if median_ttl is not None else None,
        "ttl_p90_s": round(_p90(ttls_s) or 0, 1) if ttls_s else None,
        "idle_p90_s": idle_p90,
        "recommended_ttl_s": round(target),
        "advice": advice,
    }


def _p90(values: list[float] | list[int]) -> Any:
    if not values:
        return None
    return values[min(len(values) - 1, int(0.9 * len(values)))]


def _human(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
