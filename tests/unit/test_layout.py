"""Every installed service has the same shape, and no package imports a service it does not belong to.

The shape is the one ``docs/adding-a-service.md`` walks through: ``settings.py``,
``actors.py`` (for a service that consumes queues), ``schedules.py``,
``worker.py`` with ``main``, ``service.py``, ``models.py`` and, when that module
defines tables, an Alembic branch named after the service that creates them.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

import nightshift.common
from nightshift.common.db.models import Base
from nightshift.common.schedules import module_schedules
from nightshift.common.service import ServiceSpec, installed_services, load_object
from nightshift.common.settings import ServiceSettings

#: Files every service package holds.
REQUIRED_FILES = ("__init__.py", "settings.py", "schedules.py", "worker.py", "service.py", "models.py")

SERVICES = installed_services()


def package_dir(module: str) -> Path:
    found = importlib.util.find_spec(module)
    assert found is not None and found.submodule_search_locations, f"{module} is not an installed package"
    return Path(next(iter(found.submodule_search_locations)))


def imported_nightshift_packages(root: Path) -> Iterator[tuple[Path, str]]:
    """``(file, package)`` for every ``nightshift.<package>`` a source file under *root* imports."""
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "nightshift" and len(parts) > 1:
                    yield path, parts[1]


def test_the_installed_services_are_found() -> None:
    assert {"users", "media", "notifications", "scheduler"} <= set(SERVICES)


@pytest.mark.parametrize("spec", SERVICES.values(), ids=list(SERVICES))
def test_service_package_holds_the_same_files(spec: ServiceSpec) -> None:
    package = f"nightshift.{spec.name}"
    folder = package_dir(package)

    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    assert missing == [], f"{package} lacks {', '.join(missing)}"
    # Actors only where there are queues to consume: the scheduler only enqueues.
    assert (folder / "actors.py").is_file() == bool(spec.queues)
    assert spec.actors_module == (f"{package}.actors" if spec.queues else None)


@pytest.mark.parametrize("spec", SERVICES.values(), ids=list(SERVICES))
def test_service_spec_points_at_its_own_modules(spec: ServiceSpec) -> None:
    package = f"nightshift.{spec.name}"

    assert spec.entrypoint == f"{package}.worker:main"
    assert callable(load_object(spec.entrypoint))
    assert spec.schedules_module == f"{package}.schedules"
    assert isinstance(module_schedules(spec.schedules_module), tuple)
    assert spec.settings is not None
    assert spec.settings.startswith(f"{package}.settings:")
    settings = load_object(spec.settings)
    assert isinstance(settings, type)
    assert issubclass(settings, ServiceSettings)
    assert settings.model_config.get("env_prefix") == f"{spec.name.upper()}_"


@pytest.mark.parametrize("spec", SERVICES.values(), ids=list(SERVICES))
def test_tables_of_a_service_come_with_its_own_alembic_branch(spec: ServiceSpec) -> None:
    models = importlib.import_module(f"nightshift.{spec.name}.models")
    tables = sorted(
        str(mapper.class_.__tablename__)
        for mapper in Base.registry.mappers
        if mapper.class_.__module__ == models.__name__
    )

    if not tables:
        assert spec.migrations_dir is None, f"{spec.name} has a migrations branch but no tables in models.py"
        assert models.__doc__, f"{models.__name__} must say why the service has no tables"
        return
    assert spec.migrations_dir is not None, f"{spec.name} defines {tables} but has no migrations branch"
    revisions = list(spec.migrations_dir.glob("*.py"))
    assert revisions, f"{spec.migrations_dir} holds no revision"
    labels: list[object] = []
    created: set[str] = set()
    for revision in revisions:
        tree = ast.parse(revision.read_text(), filename=str(revision))
        found = [
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "branch_labels" for target in node.targets)
        ]
        assert found, f"{revision.name} declares no branch_labels"
        labels += found
        created |= {
            str(node.args[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "create_table"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        }
    # The first revision names the branch; later ones on it leave branch_labels None.
    assert (spec.name,) in labels
    assert set(labels) <= {None, (spec.name,)}, f"{spec.name}'s revisions are on branches {labels}"
    assert set(tables) <= created, f"no revision of {spec.name} creates {sorted(set(tables) - created)}"


@pytest.mark.parametrize("spec", SERVICES.values(), ids=list(SERVICES))
def test_no_service_imports_another_service(spec: ServiceSpec) -> None:
    folder = package_dir(f"nightshift.{spec.name}")

    foreign = {
        f"{path.relative_to(folder)}: nightshift.{package}"
        for path, package in imported_nightshift_packages(folder)
        if package not in ("common", spec.name)
    }

    assert foreign == set()


def test_the_library_imports_and_names_no_service() -> None:
    folder = package_dir(nightshift.common.__name__)
    services = set(SERVICES)

    imports = {
        f"{path.relative_to(folder)}: nightshift.{package}" for path, package in imported_nightshift_packages(folder)
    }
    assert {entry for entry in imports if not entry.endswith(": nightshift.common")} == set()
    # Nor loads one by name (``load_object("nightshift.users.demo:tick")`` and the like).
    named = {
        f"{path.relative_to(folder)}: {node.value}"
        for path in sorted(folder.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(f"nightshift.{service}" in node.value for service in services)
    }
    assert named == set()
