"""A missing or malformed setting stops the process with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from nightshift.common.errors import ConfigurationError
from nightshift.common.redis_client import RedisTLS, connection_options
from nightshift.common.settings import CommonSettings, ServiceSettings, load_settings, with_redis_db


def test_missing_and_malformed_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("HEALTH_PORT", "not-a-port")

    with pytest.raises(SystemExit) as stopped:
        load_settings(CommonSettings)

    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "REDIS_URL: Field required" in err
    assert "DATABASE_URL: Value error, must be a postgresql:// URL" in err
    assert "HEALTH_PORT: Input should be a valid integer" in err


def test_local_env_file_is_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "var" / "run").mkdir(parents=True)
    (root / "var" / "run" / "local.env").write_text(
        "REDIS_URL=redis://127.0.0.1:7000/0\nDATABASE_URL=postgresql://x@/db\n"
    )
    monkeypatch.chdir(root)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-env@/db")

    settings = load_settings(CommonSettings)

    assert settings.redis_url == "redis://127.0.0.1:7000/0"
    assert settings.database_url == "postgresql://from-env@/db"
    assert settings.broker_url == "redis://127.0.0.1:7000/1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://h:1/0", "redis://h:1/3"),
        ("redis://h:1", "redis://h:1/3"),
        ("rediss://:pw@h:1/2?ssl_cert_reqs=none", "rediss://:pw@h:1/3?ssl_cert_reqs=none"),
    ],
)
def test_broker_database_is_derived_from_redis_url(url: str, expected: str) -> None:
    assert with_redis_db(url, 3) == expected


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")

    batch_size: int = Field(default=10, ge=1)
    name: str = "none"


def test_a_service_settings_subclass_sets_only_its_prefix_and_fields(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "var" / "run").mkdir(parents=True)
    (tmp_path / "var" / "run" / "local.env").write_text("EXAMPLE_NAME=from-file\nUNRELATED=ignored\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXAMPLE_BATCH_SIZE", "25")

    settings = load_settings(ExampleSettings)

    assert (settings.batch_size, settings.name) == (25, "from-file")
    with pytest.raises(ValidationError, match="frozen"):
        settings.batch_size = 1  # type: ignore[misc]

    monkeypatch.setenv("EXAMPLE_BATCH_SIZE", "0")
    with pytest.raises(SystemExit):
        load_settings(ExampleSettings)
    assert "EXAMPLE_BATCH_SIZE: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_redis_tls_files_need_a_rediss_url_and_must_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@/db")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("REDIS_TLS_CA_FILE", str(ca))
    monkeypatch.setenv("REDIS_TLS_KEY_FILE", str(ca))
    with pytest.raises(SystemExit):
        load_settings(CommonSettings)
    err = capsys.readouterr().err
    assert "REDIS_TLS_CA_FILE: Value error, is set but REDIS_URL does not start with rediss://" in err

    monkeypatch.setenv("REDIS_URL", "rediss://redis.internal:6380/0")
    monkeypatch.setenv("REDIS_TLS_CERT_FILE", str(tmp_path / "missing.crt"))
    with pytest.raises(SystemExit):
        load_settings(CommonSettings)
    err = capsys.readouterr().err
    assert f"REDIS_TLS_CERT_FILE: Value error, no such file: {tmp_path / 'missing.crt'}" in err
    assert "REDIS_TLS_KEY_FILE: Value error, is set without REDIS_TLS_CERT_FILE" in err

    monkeypatch.setenv("REDIS_TLS_CERT_FILE", str(ca))
    settings = load_settings(CommonSettings)
    assert settings.redis_tls == RedisTLS(str(ca), str(ca), str(ca))
    assert settings.broker_url == "rediss://redis.internal:6380/1"
    monkeypatch.delenv("REDIS_TLS_CA_FILE")
    monkeypatch.delenv("REDIS_TLS_CERT_FILE")
    monkeypatch.delenv("REDIS_TLS_KEY_FILE")
    assert load_settings(CommonSettings).redis_tls is None


def test_redis_tls_options_are_refused_for_a_plain_url() -> None:
    with pytest.raises(ConfigurationError, match="not rediss://"):
        connection_options("redis://127.0.0.1:6379/0", RedisTLS(ca_file="/etc/ssl/ca.pem"))
