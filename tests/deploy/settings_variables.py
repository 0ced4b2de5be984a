"""The environment variables a settings class reads, from its pydantic fields and ``env_prefix``."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from nightshift.common.service import ServiceSpec, load_object
from nightshift.common.settings import CommonSettings

#: Variables read by libraries rather than by a settings class: boto3's credential chain (S3).
LIBRARY_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"})


def variables(cls: type[BaseSettings]) -> dict[str, bool]:
    """Every variable *cls* reads, mapped to whether it is required (no default)."""
    prefix = str(cls.model_config.get("env_prefix", "") or "")
    found = {}
    for name, info in cls.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        found[(alias or f"{prefix}{name}").upper()] = info.is_required()
    return found


def service_variables(spec: ServiceSpec) -> dict[str, bool]:
    """What a process of *spec* reads: the common settings and its own class."""
    found = variables(CommonSettings)
    if spec.settings is not None:
        settings = load_object(spec.settings)
        assert isinstance(settings, type) and issubclass(settings, BaseSettings)
        found.update(variables(settings))
    return found
