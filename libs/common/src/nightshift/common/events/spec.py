"""What an event is: a name, a versioned schema and the actors subscribed to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from nightshift.common.contracts import Contract, Payload
from nightshift.common.sealing import personal_fields


@dataclass(frozen=True)
class Subscriber:
    """An actor that receives an event.

    Parameters:
      contract: The receiving actor.
      when: Only deliver events for which this returns true (routing by channel, urgency…).
      adapt: Turn the event into the actor's payload; by default the event's fields
        are passed as they are.
    """

    contract: Contract[Any]
    when: Callable[[Any], bool] | None = None
    adapt: Callable[[Any], dict[str, Any]] | None = None

    def accepts(self, event: BaseModel) -> bool:
        return self.when is None or bool(self.when(event))

    def payload_for(self, event: BaseModel) -> dict[str, Any]:
        if self.adapt is not None:
            return self.adapt(event)
        return event.model_dump(mode="json")


@dataclass(frozen=True)
class EventSpec:
    """One entry of the event catalog."""

    name: str
    version: int
    schema: type[Payload]
    subscribers: tuple[Subscriber, ...]
    description: str = ""

    @property
    def personal_fields(self) -> tuple[str, ...]:
        """The schema's personal fields: ``publish`` accepts them only sealed."""
        return personal_fields(self.schema)
