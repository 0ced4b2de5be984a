"""Running the Alembic migrations of the common schema and of every installed service."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from nightshift.common.db.engine import sqlalchemy_url
from nightshift.common.service import installed_services

#: The common schema's migrations.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration covering the common history and every service's branch."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(MIGRATIONS_DIR / "versions")]
    for spec in installed_services().values():
        if spec.migrations_dir is not None:
            locations.append(str(spec.migrations_dir))
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the database to *revision* (every head by default)."""
    command.upgrade(alembic_config(database_url), revision)
