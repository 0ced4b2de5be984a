"""The scheduler service's tables: none of its own.

It writes ``schedules`` (the code's declarations and the firing state) and
``schedule_events``, but operators change the same rows from the ops dashboard,
so the tables are defined in ``nightshift.common.db.models`` and created by the
common history, and the operators' changes are made by
``nightshift.common.schedule_control``.
"""

from __future__ import annotations
