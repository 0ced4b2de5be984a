"""Nightshift's own Dramatiq middleware; the full stack is assembled in :mod:`nightshift.common.broker`."""
