"""Redis HA settings and the replicated enqueue (``WAIT``) against a real Redis without replicas."""

from __future__ import annotations

import pytest
from dramatiq import Message

from nightshift.common.broker import build_broker
from nightshift.common.redis_ha import NotReplicated, ReplicatedRedisBroker, parse_sentinels, redis_client
from nightshift.common.settings import CommonSettings, load_settings

pytestmark = pytest.mark.integration


def test_sentinel_addresses_are_parsed_and_bad_ones_named() -> None:
    assert parse_sentinels("10.0.0.1:26379, sentinel-b:26380") == [("10.0.0.1", 26379), ("sentinel-b", 26380)]
    with pytest.raises(ValueError, match="'sentinel-c' is not host:port"):
        parse_sentinels("10.0.0.1:26379,sentinel-c")


def test_a_malformed_sentinel_list_stops_the_process_naming_the_variable(
    env: CommonSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_SENTINELS", "nowhere")
    with pytest.raises(SystemExit):
        load_settings(CommonSettings)
    assert "REDIS_SENTINELS" in capsys.readouterr().err


def test_without_sentinels_clients_come_from_the_url(env: CommonSettings) -> None:
    client = redis_client(env, db=3)
    assert client.connection_pool.connection_kwargs["db"] == 3
    assert client.ping()


def test_an_enqueue_no_replica_acknowledged_is_refused(env: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "1")
    monkeypatch.setenv("REDIS_WAIT_TIMEOUT_MS", "50")
    broker = build_broker(load_settings(CommonSettings), set_global=False)
    assert isinstance(broker, ReplicatedRedisBroker)
    message: Message[object] = Message(queue_name="hatest_high", actor_name="a", args=(), kwargs={}, options={})
    with pytest.raises(NotReplicated, match="acknowledged by 0 of 1 replicas within 50 ms"):
        broker.enqueue(message)
    broker.close()
