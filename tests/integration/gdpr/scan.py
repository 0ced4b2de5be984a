"""Looking for a person everywhere the platform keeps anything: tables, storage, Redis, the mail outbox."""

from __future__ import annotations

import email
import email.policy
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

import redis
from sqlalchemy import Engine, text

from nightshift.common.storage import Storage


def scan_tables(engine: Engine, needles: Iterable[str]) -> list[str]:
    """``table: needle`` for every row of every table whose JSON form holds a needle."""
    found = []
    with engine.connect() as connection:
        tables = connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
        ).scalars()
        for table in sorted(tables):
            for (row,) in connection.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" t')):  # noqa: S608
                found += [f"{table}: {needle} in {row}" for needle in needles if needle in row]
    return found


def scan_storage(storage: Storage, needles: Iterable[str]) -> list[str]:
    """``key: needle`` for every object whose key or content (zip members read) holds a needle."""
    needles = list(needles)
    found = []
    for key in sorted(storage.list()):
        found += [f"{key} (key): {needle}" for needle in needles if needle in key]
        for name, data in _contents(key, storage.get(key)):
            found += [f"{key}{name}: {needle}" for needle in needles if needle.encode() in data]
    return found


def scan_redis(client: redis.Redis[bytes], needles: Iterable[str]) -> list[str]:
    """``key: needle`` for every key of the client's database whose name or value holds a needle."""
    needles = list(needles)
    found = []
    for raw in client.scan_iter(count=1000):
        key = raw.decode()
        values = _redis_values(client, raw)
        found += [
            f"{key}: {needle}" for needle in needles if needle in key or any(needle.encode() in v for v in values)
        ]
    return found


def scan_mail_outbox(folder: Path, needles: Iterable[str]) -> list[str]:
    """``file: needle`` for every email of the outbox folder whose name, headers or decoded parts hold a needle."""
    needles = list(needles)
    found = []
    for path in sorted(folder.glob("*")) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        parts = [path.name, *(f"{name}: {value}" for name, value in message.items())]
        parts += [str(part.get_content()) for part in message.walk() if not part.is_multipart()]
        found += [f"{path.name}: {needle}" for needle in needles if any(needle in p for p in parts)]
    return found


def _contents(key: str, data: bytes) -> list[tuple[str, bytes]]:
    if not key.endswith(".zip"):
        return [("", data)]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(f"!{name}", archive.read(name)) for name in archive.namelist()]


def _redis_values(client: redis.Redis[bytes], key: bytes) -> list[bytes]:
    kind = client.type(key)  # type: ignore[no-untyped-call]
    if kind == b"string":
        value = client.get(key)
        return [value] if value is not None else []
    if kind == b"hash":
        return [k + b"=" + v for k, v in client.hgetall(key).items()]
    if kind == b"list":
        return list(client.lrange(key, 0, -1))
    if kind == b"set":
        return list(client.smembers(key))
    if kind == b"zset":
        return [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
    return []
