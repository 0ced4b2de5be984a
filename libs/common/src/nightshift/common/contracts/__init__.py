"""Actor contracts: the name, queue and payload of every actor, known to all services.

A service sends to another by contract, never by importing its code: the
message is built by actor name and the receiving worker parses the payload
with the same model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import dramatiq
from dramatiq import Message
from pydantic import BaseModel, ConfigDict, ValidationError

from nightshift.common.errors import InvalidPayload
from nightshift.common.lanes import Lane, queue_name


class Payload(BaseModel):
    """Base of every payload, an actor's and an event's: ids and non-personal facts, nothing else.

    Unknown fields are refused and a parsed payload cannot be changed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArguments(Payload):
    """The payload of an actor that takes none (periodic maintenance jobs)."""


PayloadT = TypeVar("PayloadT", bound=Payload)


@dataclass(frozen=True)
class Contract(Generic[PayloadT]):
    """What a sender needs to know about an actor.

    Parameters:
      service: The service whose workers run the actor.
      actor_name: The Dramatiq actor name.
      lane: The lane (and so the queue) the actor consumes.
      payload: The pydantic model of the actor's keyword arguments.
      options: Extra Dramatiq actor options (``time_limit``, ``retry_delays_ms``…).
    """

    service: str
    actor_name: str
    lane: Lane
    payload: type[PayloadT]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def queue_name(self) -> str:
        return queue_name(self.service, self.lane)

    def parse(self, data: Mapping[str, Any]) -> PayloadT:
        """Validate *data* against the payload model.

        Raises:
          InvalidPayload: Naming the fields that are wrong.
        """
        try:
            return self.payload.model_validate(dict(data))
        except ValidationError as error:
            raise InvalidPayload(f"{self.actor_name}: {describe_validation_error(error)}") from None

    def message(
        self,
        payload: PayloadT | Mapping[str, Any],
        *,
        message_id: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Message[Any]:
        """Build (without sending) a message for this actor."""
        model = payload if isinstance(payload, self.payload) else self.parse(payload)  # type: ignore[arg-type]
        extra: dict[str, Any] = {}
        if message_id is not None:
            extra["message_id"] = message_id
        return Message(
            queue_name=self.queue_name,
            actor_name=self.actor_name,
            args=(),
            kwargs=model.model_dump(mode="json"),
            options=dict(options or {}),
            **extra,
        )

    def send(
        self,
        payload: PayloadT | Mapping[str, Any],
        *,
        broker: dramatiq.Broker | None = None,
        message_id: str | None = None,
        options: Mapping[str, Any] | None = None,
        delay_ms: int | None = None,
    ) -> Message[Any]:
        """Validate *payload* and enqueue a message for this actor."""
        message = self.message(payload, message_id=message_id, options=options)
        return (broker or dramatiq.get_broker()).enqueue(message, delay=delay_ms)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each wrong field and what is wrong with it (never the value)."""
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def contract_actor(
    contract: Contract[PayloadT], **options: Any
) -> Callable[[Callable[[PayloadT], None]], dramatiq.Actor[..., None]]:
    """Declare the Dramatiq actor that fulfils *contract*.

    The decorated function receives the parsed payload; a payload that does not
    match the contract raises :class:`InvalidPayload`, a permanent error.
    """

    def decorator(function: Callable[[PayloadT], None]) -> dramatiq.Actor[..., None]:
        def run(**kwargs: Any) -> None:
            function(contract.parse(kwargs))

        run.__name__ = run.__qualname__ = contract.actor_name
        run.__doc__ = function.__doc__
        declare = dramatiq.actor(
            actor_name=contract.actor_name,
            queue_name=contract.queue_name,
            priority=contract.lane.priority,
            **{**contract.options, **options},
        )
        return declare(run)

    return decorator
