"""``python -m nightshift.scheduler``: run one scheduler process."""

from __future__ import annotations

import sys

from nightshift.scheduler.main import run
from nightshift.scheduler.service import SERVICE

if __name__ == "__main__":
    sys.exit(run(SERVICE))
