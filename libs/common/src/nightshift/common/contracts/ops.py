"""Contracts of the ops service's actors: alerts and the platform's maintenance."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from nightshift.common.contracts import Contract, NoArguments, Payload
from nightshift.common.contracts.notifications import OpsAlert
from nightshift.common.lanes import Lane


class AlertNoticeRef(Payload):
    """A notice (an alert fired or resolved) to deliver by email and webhook."""

    notice_id: int = Field(gt=0)


class ReportRequest(Payload):
    """Build, store and email the report of the period that ended last."""

    period: Literal["weekly", "monthly"]


#: An alert raised elsewhere (``ops.alert_raised``: content anomalies, GDPR deadlines, breakers)
#: joins the evaluator's alerts: recorded once per key, delivered unless silenced.
RECORD_RAISED_ALERT = Contract("ops", "record_raised_alert", Lane.NORMAL, OpsAlert)
DELIVER_ALERT_NOTICE = Contract("ops", "deliver_alert_notice", Lane.NORMAL, AlertNoticeRef)
COLLECT_CACHE_STATS = Contract("ops", "collect_cache_stats", Lane.LOW, NoArguments)
#: Deleting in bounded batches over millions of rows may take minutes.
PURGE_EXPIRED_DATA = Contract("ops", "purge_expired_data", Lane.LOW, NoArguments, options={"time_limit": 3_600_000})
CHECK_DEPENDENCIES = Contract("ops", "check_dependencies", Lane.NORMAL, NoArguments)
#: Each run commits bounded batches; a catch-up after downtime may take minutes and resumes where it stopped.
ROLL_UP_ACTOR_STATS = Contract("ops", "roll_up_actor_stats", Lane.LOW, NoArguments, options={"time_limit": 600_000})
BUILD_REPORT = Contract("ops", "build_report", Lane.LOW, ReportRequest, options={"time_limit": 600_000})
