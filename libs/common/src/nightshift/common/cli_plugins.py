"""Services add command groups to ``nightshift`` through the ``nightshift.cli`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

import click

#: Entry-point group whose objects are click commands or groups added to ``nightshift``.
CLI_ENTRY_POINT_GROUP = "nightshift.cli"


def add_plugin_commands(group: click.Group) -> None:
    """Add every installed service's commands to *group*."""
    for entry in entry_points(group=CLI_ENTRY_POINT_GROUP):
        command = entry.load()
        if not isinstance(command, click.Command):
            raise TypeError(f"entry point {entry.name!r} is not a click command")
        group.add_command(command, entry.name)
