"""Domain errors. Every refusal carries a sentence a person can read.

The API maps them to status codes: InvalidInput -> 400, NotFound -> 404,
TransitionNotAllowed -> 409.
"""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, reason: str, *, fields: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields or {}


class InvalidInput(DomainError):
    """The request itself is wrong (a missing field, a date in the past)."""


class NotFound(DomainError):
    """No such subscription or item for this client."""


class TransitionNotAllowed(DomainError):
    """The event is not allowed in the subscription's current state."""


class ConcurrentChange(TransitionNotAllowed):
    """Someone else changed the subscription first; nothing was changed."""


class RefundDeclined(TransitionNotAllowed):
    """The payment service did not give the money back; nothing was recorded."""
