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


def test_every_client_gets_the_deployment_timeouts_and_the_broker_waits_within_them(
    env: CommonSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT_S", "3")
    monkeypatch.setenv("REDIS_CONNECT_TIMEOUT_S", "0.5")
    monkeypatch.setenv("REDIS_HEALTH_CHECK_INTERVAL_S", "7")
    settings = load_settings(CommonSettings)
    kwargs = redis_client(settings).connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"], kwargs["health_check_interval"]) == (3, 0.5, 7)
    # A probe's own, shorter timeout wins.
    assert redis_client(settings, socket_timeout=1).connection_pool.connection_kwargs["socket_timeout"] == 1
    broker = build_broker(settings, set_global=False)
    # An idle BLPOP ends (Redis answers nil) well before the socket would give up on it.
    assert broker.client.connection_pool.connection_kwargs["socket_timeout"] == 3
    assert broker.bounded_wait_s(60) == 1.5
    broker.close()


def test_a_wait_longer_than_the_socket_timeout_is_refused_naming_both(
    env: CommonSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_WAIT_TIMEOUT_MS", "5000")
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT_S", "5")
    with pytest.raises(SystemExit):
        load_settings(CommonSettings)
    assert "REDIS_WAIT_TIMEOUT_MS (5000) must be shorter than REDIS_SOCKET_TIMEOUT_S (5.0)" in capsys.readouterr().err


def test_an_enqueue_no_replica_acknowledged_is_refused(env: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "1")
    monkeypatch.setenv("REDIS_WAIT_TIMEOUT_MS", "50")
    broker = build_broker(load_settings(CommonSettings), set_global=False)
    assert isinstance(broker, ReplicatedRedisBroker)
    message: Message[object] = Message(queue_name="hatest_high", actor_name="a", args=(), kwargs={}, options={})
    with pytest.raises(NotReplicated, match="acknowledged by 0 of 1 replicas within 50 ms"):
        broker.enqueue(message)
    broker.close()
