"""Each service's Alembic branch has one head: two migrations after the same one are a merge left undone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from alembic.script import ScriptDirectory

from nightshift.common.db.migrate import alembic_config
from nightshift.common.service import installed_services


def test_every_service_branch_has_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("postgresql://nobody@localhost/none"))
    heads_per_folder = Counter(Path(str(script.get_revision(head).path)).parent for head in script.get_heads())
    folders = [spec.migrations_dir for spec in installed_services().values() if spec.migrations_dir is not None]
    assert folders, "no service brings migrations"
    for folder in folders:
        assert heads_per_folder[Path(folder)] == 1, f"{folder}: {heads_per_folder[Path(folder)]} heads"
