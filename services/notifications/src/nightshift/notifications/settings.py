"""Settings of the notifications service (prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import SettingsConfigDict

from nightshift.common.settings import ServiceSettings

#: SendGrid's production API; tests point the client at a local server instead.
SENDGRID_API_HOST = "https://api.sendgrid.com"


class NotificationsSettings(ServiceSettings):
    """How the notifications service reaches its mail provider.

    Secrets have no defaults: the SendGrid key must be given whenever
    ``MAIL_BACKEND=sendgrid``, and the SMTP password whenever an SMTP user is.
    """

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")

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

    from_address: str = Field(default="no-reply@nightshift.local", pattern=r"^[^@\s]+@[^@\s]+$")
    from_name: str = "Nightshift"
    #: Where operators' alerts (``ops.alert_raised``) are emailed until the ops service exists.
    operators_address: str = Field(default="operators@nightshift.local", pattern=r"^[^@\s]+@[^@\s]+$")
    #: Used when a user's locale has no version of the template.
    default_locale: str = Field(default="en", pattern=r"^[a-z]{2}$")

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
