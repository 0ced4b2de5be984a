"""Contracts of the users service's actors."""

from __future__ import annotations

from nightshift.common.contracts import Contract, NoArguments, Payload
from nightshift.common.contracts.gdpr import PART_TIME_LIMIT_MS, GdprRequestRef
from nightshift.common.lanes import Lane


class UserRef(Payload):
    user_id: int


SEND_WELCOME_EMAIL = Contract("users", "send_welcome_email", Lane.HIGH, UserRef)
CLEANUP_EXPIRED_TOKENS = Contract("users", "cleanup_expired_tokens", Lane.LOW, NoArguments)
UPDATE_USER_STATISTICS = Contract("users", "update_user_statistics", Lane.NORMAL, NoArguments)


#: The GDPR workflow, run by the users service (see ``docs/gdpr.md``).
#: ``export_user_data`` / ``erase_user`` start a request's parts; the finishing
#: steps run once every part is acknowledged.
EXPORT_USER_DATA = Contract("users", "export_user_data", Lane.HIGH, GdprRequestRef)
ERASE_USER = Contract("users", "erase_user", Lane.HIGH, GdprRequestRef)
#: Zipping a user's originals takes seconds to minutes; half an hour is a hung worker.
ASSEMBLE_USER_EXPORT = Contract(
    "users", "assemble_user_export", Lane.HIGH, GdprRequestRef, options={"time_limit": PART_TIME_LIMIT_MS}
)
FINISH_USER_ERASURE = Contract(
    "users", "finish_user_erasure", Lane.HIGH, GdprRequestRef, options={"time_limit": PART_TIME_LIMIT_MS}
)
CHECK_GDPR_DEADLINES = Contract("users", "check_gdpr_deadlines", Lane.LOW, NoArguments)
