"""Settings of the notifications service (prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings

#: SendGrid's production API; tests point the client at a local server instead.
SENDGRID_API_HOST = "https://api.sendgrid.com"
#: Firebase Cloud Messaging's HTTP v1 API.
FCM_API_URL = "https://fcm.googleapis.com"


class NotificationsSettings(ServiceSettings):
    """How the notifications service reaches its mail provider.

    Secrets have no defaults: the SendGrid key must be given whenever
    ``MAIL_BACKEND=sendgrid``, and the SMTP password whenever an SMTP user is.
    """

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")

    #: The common ``ENVIRONMENT``: in production every secret below that is used must be set.
    environment: Literal["development", "production", "test"] = Field(
        default="development", validation_alias="ENVIRONMENT"
    )

    #: The common ``MAIL_BACKEND`` (unprefixed), read here too so that the backend's
    #: own requirements are checked when these settings load, at worker start.
    mail_backend: Literal["outbox", "smtp", "sendgrid"] = Field(default="outbox", validation_alias="MAIL_BACKEND")

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = Field(default=None, validate_default=True)
    smtp_starttls: bool = False
    #: Seconds allowed for connecting to the SMTP server and for each command.
    smtp_timeout_s: float = Field(default=10.0, gt=0)

    sendgrid_api_key: SecretStr | None = Field(default=None, validate_default=True)
    sendgrid_host: str = SENDGRID_API_HOST
    #: Seconds allowed for one SendGrid API call.
    sendgrid_timeout_s: float = Field(default=10.0, gt=0)
    #: Recipients (personalizations) per bulk request: SendGrid takes 1,000; fewer bounds how many
    #: recipients a worker dying mid-request leaves uncertain.
    sendgrid_batch_size: int = Field(default=1000, ge=1, le=1000)
    #: Seconds after its request within which a bulk recipient left uncertain by a crash is expected to be
    #: confirmed by SendGrid's events; still uncertain after it, the operators are alerted.
    bulk_uncertain_grace_s: int = Field(default=3600, ge=60)

    from_address: str = Field(default="no-reply@nightshift.local", pattern=r"^[^@\s]+@[^@\s]+$")
    from_name: str = "Nightshift"
    #: Where operators' alerts (``ops.alert_raised``) are emailed until the ops service exists.
    operators_address: str = Field(default="operators@nightshift.local", pattern=r"^[^@\s]+@[^@\s]+$")
    #: Used when a user's locale has no version of the template.
    default_locale: str = Field(default="en", pattern=r"^[a-z]{2}$")

    #: SendGrid: requests per second and at once, across every worker.
    sendgrid_rps: int = Field(default=10, ge=1)
    sendgrid_concurrency: int = Field(default=8, ge=1)
    #: SendGrid's event webhook verification key (base64 DER, "Signed Event Webhook"); None refuses events.
    sendgrid_webhook_public_key: str | None = None
    #: Signed event webhook requests older than this are refused (replays).
    sendgrid_webhook_max_age_s: int = Field(default=600, ge=10)

    #: Public listener (one-click unsubscribe, provider webhooks): address, port and the URL users see.
    public_host: str = "0.0.0.0"  # noqa: S104 - reached through the ingress
    public_port: int = Field(default=8112, ge=0, le=65535)
    public_url: str = Field(default="http://127.0.0.1:8112", pattern=r"^https?://")
    #: Signs unsubscribe links; required in production (elsewhere one is kept in Redis).
    unsubscribe_secret: SecretStr | None = Field(default=None, validate_default=True)

    #: Firebase Cloud Messaging: service-account JSON file, project (from the file by default), API URL.
    fcm_credentials_file: str | None = None
    fcm_project_id: str | None = None
    fcm_url: str = FCM_API_URL
    fcm_rps: int = Field(default=200, ge=1)
    fcm_concurrency: int = Field(default=16, ge=1)
    #: Web Push: the VAPID private key (PEM or base64url raw; elsewhere than production one is kept in Redis).
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = Field(default="mailto:no-reply@nightshift.local", pattern=r"^(mailto:|https://)")
    webpush_concurrency: int = Field(default=16, ge=1)
    #: Seconds allowed for one push request.
    push_timeout_s: float = Field(default=10.0, gt=0)

    #: Circuit breakers of the providers: failures in a row that open one, seconds it stays open.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_s: float = Field(default=30.0, gt=0)

    #: Webhooks: per-request timeout, breaker per endpoint, how long an endpoint may fail before it is disabled.
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=30)
    webhook_breaker_failures: int = Field(default=5, ge=1)
    webhook_breaker_open_s: float = Field(default=60.0, gt=0)
    webhook_disable_after_s: int = Field(default=5 * 24 * 3600, ge=60)
    #: Hours the previous secret stays valid after a rotation.
    webhook_secret_overlap_h: float = Field(default=24.0, ge=0)
    #: Let webhooks reach loopback addresses (the local runner's receiver, tests); never in production.
    webhooks_allow_loopback: bool = False

    @field_validator("unsubscribe_secret")
    @classmethod
    def _secret_in_production(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("environment") == "production" and not (value and len(value.get_secret_value()) >= 16):
            raise ValueError("required (16 characters or more) when ENVIRONMENT is production")
        return value

    @field_validator("webhooks_allow_loopback")
    @classmethod
    def _no_loopback_in_production(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("environment") == "production":
            raise ValueError("must stay false when ENVIRONMENT is production")
        return value

    @field_validator("sendgrid_api_key")
    @classmethod
    def _sendgrid_key_when_sendgrid(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("mail_backend") == "sendgrid" and not (value and value.get_secret_value()):
            raise ValueError("required when MAIL_BACKEND is sendgrid")
        return value

    @field_validator("smtp_password")
    @classmethod
    def _password_with_user(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("smtp_user") and value is None:
            raise ValueError("required when NOTIFICATIONS_SMTP_USER is set")
        return value
