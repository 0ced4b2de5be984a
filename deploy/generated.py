"""What the generators of ``deploy`` share: write the files that changed, or with ``--check`` name them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def stale_files(files: dict[Path, str]) -> list[Path]:
    """The paths whose content on disk differs from *files*."""
    return [path for path, text in files.items() if not path.is_file() or path.read_text() != text]


def write_or_check(files: dict[Path, str], *, command: str, description: str, argv: Sequence[str] | None) -> int:
    """Write the stale *files*, or with ``--check`` report them on stderr and return 1.

    Parameters:
      files: Every generated file's text, by path.
      command: What regenerates them (``python -m deploy.manifests``), named in the report.
      description: The command line's help.
      argv: The arguments (``sys.argv[1:]`` by default).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    options = parser.parse_args(argv)
    stale = stale_files(files)
    if options.check:
        for path in stale:
            print(f"out of date: {path} (run {command})", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(files[path])
        print(f"wrote {path}")
    return 0
