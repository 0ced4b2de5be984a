"""The environment variables a settings class reads, from its pydantic fields and ``env_prefix``."""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from pathlib import Path

from pydantic_settings import BaseSettings

import nightshift.common
from nightshift.common.service import ServiceSpec, load_object
from nightshift.common.settings import CommonSettings, ServiceSettings

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


@cache
def common_settings_classes() -> tuple[type[ServiceSettings], ...]:
    """Every settings class of the common library a service may read besides ``CommonSettings``
    (``GdprSettings``, ``StorageSettings``…), found by importing the library."""
    for module in pkgutil.walk_packages(nightshift.common.__path__, "nightshift.common."):
        importlib.import_module(module.name)
    found: list[type[ServiceSettings]] = []
    pending = list(ServiceSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.startswith("nightshift.common.") and cls is not CommonSettings:
            found.append(cls)
    return tuple(sorted(set(found), key=lambda cls: cls.__name__))


def settings_classes(spec: ServiceSpec) -> list[type[BaseSettings]]:
    """What a process of *spec* reads: the common settings, its own class, and every common
    library class its code names (the users service reads ``GdprSettings``)."""
    classes: list[type[BaseSettings]] = [CommonSettings]
    if spec.settings is not None:
        settings = load_object(spec.settings)
        assert isinstance(settings, type) and issubclass(settings, BaseSettings)
        classes.append(settings)
    source = _package_source(f"nightshift.{spec.name}")
    classes += [cls for cls in common_settings_classes() if re.search(rf"\b{cls.__name__}\b", source)]
    return classes


def service_variables(spec: ServiceSpec) -> dict[str, bool]:
    """Every variable a process of *spec* reads (its :func:`settings_classes`), mapped to whether it is required."""
    found: dict[str, bool] = {}
    for cls in settings_classes(spec):
        found.update(variables(cls))
    return found


@cache
def _package_source(package: str) -> str:
    module = importlib.import_module(package)
    return "\n".join(path.read_text() for folder in module.__path__ for path in sorted(Path(folder).rglob("*.py")))
