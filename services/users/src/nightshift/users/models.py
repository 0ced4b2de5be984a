"""The users service's tables: none of its own.

The tables it works on (``users``, ``auth_tokens``, ``user_sessions``,
``user_stats``) are the social app's data, read by other services too (a
user's address and locale by notifications), so they are defined in
``nightshift.common.db.models`` and created by the common history. The service
therefore has no Alembic branch.
"""

from __future__ import annotations
