"""What every lifecycle service shares: who acts, row locks, and writing a
change together with its history entry and its outbox notification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from commerce import clock, webhooks
from commerce.models import OutboxNotification, Purchase
from customers.emails import queue_for_notification
from customers.models import Customer

from ..errors import NotFound, TransitionNotAllowed
from ..models import HistoryEntry, ItemStatus, Subscription, SubscriptionItem, SubscriptionStatus
from ..notifications import subscription_payload


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
    """Keep SPEC 2: a subscription with no Active item is not Active.

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


def record(
    locked: Locked,
    *,
    actor: Actor,
    event_code: str,
    summary: str,
    at: datetime,
    notification: str | None = None,
    payload: dict[str, Any] | None = None,
    purchase: Purchase | None = None,
    generate_mail: bool = True,
) -> HistoryEntry:
    """Save the subscription and its items, then write the history entry and
    the outbox row, all in the caller's transaction."""
    sub = locked.sub
    sub.save_changes()
    SubscriptionItem.objects.bulk_update(
        locked.items,
        [
            "product",
            "status",
            "version",
            "quantity",
            "unit_price",
            "last_interval_no",
            "end_date",
            "deactivation_date",
        ],
    )
    after = sub.snapshot(locked.items)
    changed = {k for k in after if after[k] != locked.before.get(k)}
    entry = HistoryEntry.objects.create(
        client_id=sub.client_id,
        subscription=sub,
        created_at=at,
        actor_kind=actor.kind,
        actor_label=actor.label,
        staff_user=actor.user if actor.kind == HistoryEntry.ActorKind.STAFF else None,
        event_code=event_code,
        summary=summary,
        before={k: locked.before[k] for k in changed if k in locked.before},
        after={k: after[k] for k in changed},
    )
    if notification:
        OutboxNotification.objects.create(
            client_id=sub.client_id,
            type=notification,
            payload=payload if payload is not None else subscription_payload(sub, locked.items),
            subscription=sub,
            purchase=purchase,
            generate_mail=generate_mail,
            created_at=at,
        )
        webhooks.deliver_after_commit()
        if generate_mail:
            queue_for_notification(notification, subscription=sub, purchase=purchase, at=at)
    locked.before = after
    return entry
