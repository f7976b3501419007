"""What every lifecycle service shares: who acts, row locks, and writing a
change together with its history entry and its outbox notification."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from commerce import clock
from commerce.bulk import Row, insert_dicts
from commerce.models import Purchase
from customers.models import Customer

from ..errors import NotFound, TransitionNotAllowed
from ..models import (
    EventCode,
    HistoryEntry,
    ItemStatus,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from ..notifications import outbox
from ..notifications.payloads import subscription_payload


class TransactionStatus(enum.StrEnum):
    """A charge's outcome as the API reports it (TransactionStatus)."""

    SUCCESS = "Success"
    REJECTED = "Rejected"
    ERROR = "Error"
    PENDING = "Pending"


@dataclass(frozen=True)
class Actor:
    """Who made a change, as history shows it."""

    kind: str
    label: str
    user: User | None = None

    @classmethod
    def staff(cls, user: User) -> Actor:
        return cls(HistoryEntry.ActorKind.STAFF, user.get_username(), user)

    @classmethod
    def api(cls, credential_label: str) -> Actor:
        return cls(HistoryEntry.ActorKind.API, f"API {credential_label}")

    @classmethod
    def customer(cls, customer: Customer) -> Actor:
        return cls(HistoryEntry.ActorKind.CUSTOMER, customer.email)

    @classmethod
    def gateway(cls) -> Actor:
        """The payment gateway's callback (a chargeback)."""
        return cls(HistoryEntry.ActorKind.SYSTEM, "payment gateway")


SYSTEM = Actor(HistoryEntry.ActorKind.SYSTEM, "system")


def now_or(at: datetime | None, owner: Any = None) -> datetime:
    """``at``, or now on the clock of ``owner``'s client (a subscription,
    purchase, customer or client): a sandbox client's test clock, else real time."""
    moment = at or (clock.now_for(owner) if owner is not None else timezone.now())
    if timezone.is_naive(moment):
        raise ValueError("times are timezone-aware UTC")
    return moment


@dataclass
class Locked:
    """A subscription row locked for this transaction, with its items."""

    sub: Subscription
    items: list[SubscriptionItem]
    before: dict[str, Any]

    def item(self, running_no: int) -> SubscriptionItem:
        for item in self.items:
            if item.running_no == running_no:
                return item
        raise NotFound(f"Subscription {self.sub.display_id} has no item {running_no}.")

    def items_in(self, *statuses: str) -> list[SubscriptionItem]:
        return [i for i in self.items if i.status in statuses]


def lock(subscription: Subscription | int) -> Locked:
    """Lock the subscription row (SELECT ... FOR UPDATE) inside the caller's
    transaction, so two workers or two clicks cannot interleave."""
    assert transaction.get_connection().in_atomic_block, "lock() needs a transaction"
    pk = subscription if isinstance(subscription, int) else subscription.pk
    sub = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("client", "customer", "payment_method")
        .get(pk=pk)
    )
    items = list(sub.items.select_related("product").order_by("running_no"))
    return Locked(sub, items, sub.snapshot(items))


def refuse_if_not_ours(sub: Subscription) -> None:
    if sub.status == SubscriptionStatus.HANDLED_BY_CLIENT:
        raise TransitionNotAllowed(
            f"Subscription {sub.display_id} is handled by the client; "
            "the platform does not change it."
        )


def settle_subscription_status(locked: Locked, *, at: datetime) -> None:
    """A subscription with no Active item is not Active (docs/lifecycle.md).

    Items left that can come back (Deactivated, AwaitingReinstate) make it
    Deactivated; if none can, it is Finished.
    """
    sub = locked.sub
    if locked.items_in(ItemStatus.ACTIVE) or sub.status in (
        SubscriptionStatus.FINISHED,
        SubscriptionStatus.HANDLED_BY_CLIENT,
    ):
        return
    if locked.items_in(ItemStatus.DEACTIVATED, ItemStatus.AWAITING_REINSTATE):
        sub.set_status(SubscriptionStatus.DEACTIVATED, at=at)
    else:
        sub.set_status(SubscriptionStatus.FINISHED, at=at)


# What ``record`` writes of the items: every field a service may change.
ITEM_FIELDS = [
    "product",
    "status",
    "version",
    "quantity",
    "unit_price",
    "last_interval_no",
    "end_date",
    "deactivation_date",
]


@dataclass
class Written:
    """The rows one change adds beside the rows it changes: its history
    entry, and its outbox notification and customer e-mail if it has them."""

    history: Row
    outbox: Row | None = None
    email: Row | None = None


def history_entry(
    *,
    client_id: int,
    subscription_id: int,
    actor: Actor,
    event_code: EventCode,
    summary: str,
    at: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
) -> Row:
    """A history entry (a row to insert) with the values that changed
    (docs/lifecycle.md)."""
    changed = [k for k in after if after[k] != before.get(k)]
    staff = actor.user if actor.kind == HistoryEntry.ActorKind.STAFF else None
    return {
        "client_id": client_id,
        "subscription_id": subscription_id,
        "created_at": at,
        "actor_kind": actor.kind,
        "actor_label": actor.label,
        "staff_user_id": staff.pk if staff is not None else None,
        "event_code": event_code,
        "summary": summary,
        "before": {k: before[k] for k in changed if k in before},
        "after": {k: after[k] for k in changed},
    }


def change_rows(
    locked: Locked,
    *,
    actor: Actor,
    event_code: EventCode,
    summary: str,
    at: datetime,
    notification: str | None = None,
    payload: dict[str, Any] | None = None,
    purchase: Purchase | None = None,
    generate_mail: bool = True,
    email_kind: str | None = None,
) -> Written:
    """The history entry, outbox row and e-mail of a change made to
    ``locked`` (unsaved; ``record`` and the set-based renewal write them)."""
    sub = locked.sub
    after = sub.snapshot(locked.items)
    written = Written(
        history_entry(
            client_id=sub.client_id,
            subscription_id=sub.pk,
            actor=actor,
            event_code=event_code,
            summary=summary,
            at=at,
            before=locked.before,
            after=after,
        )
    )
    if notification:
        written.outbox = outbox.outbox_row(
            notification,
            client_id=sub.client_id,
            payload=payload if payload is not None else subscription_payload(sub, locked.items),
            at=at,
            subscription=sub,
            purchase=purchase,
            generate_mail=generate_mail,
        )
        if generate_mail:
            written.email = outbox.email_for(
                notification, subscription=sub, purchase=purchase, at=at, kind=email_kind
            )
    locked.before = after
    return written


def save(locked: Locked) -> None:
    """Save the subscription (compare-and-swap on its row version) and its items."""
    locked.sub.save_changes()
    SubscriptionItem.objects.bulk_update(locked.items, ITEM_FIELDS)


def write_history(entries: Sequence[Row]) -> None:
    """The one writer of history entries (append-only; docs/decisions.md).
    The SM 2.0 migration's set-based insert is the one exception."""
    insert_dicts(HistoryEntry, entries)


def write(written: Sequence[Written]) -> None:
    """Insert the rows of one or many changes, one statement per table, in
    the caller's transaction."""
    write_history([w.history for w in written])
    outbox.write(
        [w.outbox for w in written if w.outbox is not None],
        [w.email for w in written if w.email is not None],
    )


def record(
    locked: Locked,
    *,
    actor: Actor,
    event_code: EventCode,
    summary: str,
    at: datetime,
    notification: str | None = None,
    payload: dict[str, Any] | None = None,
    purchase: Purchase | None = None,
    generate_mail: bool = True,
    email_kind: str | None = None,
) -> None:
    """Save the subscription (compare-and-swap on its row version) and its
    items, then write the history entry and the outbox row, all in the
    caller's transaction."""
    save(locked)
    write(
        [
            change_rows(
                locked,
                actor=actor,
                event_code=event_code,
                summary=summary,
                at=at,
                notification=notification,
                payload=payload,
                purchase=purchase,
                generate_mail=generate_mail,
                email_kind=email_kind,
            )
        ]
    )
