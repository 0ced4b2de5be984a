"""GDPR: a user's data exported or erased across every service, with a completion record and a signed proof.

A request is a row of ``gdpr_requests`` written with its event in one transaction
(:mod:`.requests`). The users service splits it into one part per service
(:mod:`.workflow`); each service does its part through its own actor and
acknowledges it with counts in the same transaction as its effect; the last
acknowledgement writes ``gdpr.parts_completed`` to the outbox, which starts the
one finishing step (the archive, or the account's deletion and the platform's
scrubbing, :mod:`.scrub`). :mod:`.proof` signs the completion record;
:mod:`.deadlines` raises an alert for a request past its deadline. See ``docs/gdpr.md``.
"""
