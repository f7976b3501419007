"""Staff, API and portal changes to a subscription (docs/lifecycle.md)."""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.db import transaction

from commerce.models import SMVersion
from customers.models import CustomerEmail

from ..errors import ConcurrentChange, InvalidInput, NotFound, TransitionNotAllowed
from ..models import (
    EventCode,
    ItemStatus,
    RenewalType,
    Subscription,
    SubscriptionStatus,
)
from ..notifications.types import NotificationType
from .billing import NextDates, OnDecline, charge_next_interval, not_due
from .common import (
    Actor,
    Locked,
    lock,
    now_or,
    record,
    refuse_if_not_ours,
    settle_subscription_status,
)

S, IS, E, N = SubscriptionStatus, ItemStatus, EventCode, NotificationType


def _pick_items(locked: Locked, running_nos: list[int]) -> list:
    if not running_nos:
        raise InvalidInput("Name at least one item.", fields={"Items": "Name at least one item."})
    return [locked.item(no) for no in sorted(set(running_nos))]


def deactivate_items(
    *,
    subscription: Subscription,
    running_nos: list[int],
    allow_reinstate: bool = True,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Subscription:
    """Stop billing the named items. ``allow_reinstate=False`` retires them
    (Finished, for good). The subscription stays Active while any item is."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        refuse_if_not_ours(locked.sub)
        if locked.sub.status == S.FINISHED:
            raise TransitionNotAllowed(f"Subscription {locked.sub.display_id} is Finished.")
        target = IS.DEACTIVATED if allow_reinstate else IS.FINISHED
        for item in _pick_items(locked, running_nos):
            if item.status == target:
                raise TransitionNotAllowed(f"Item {item.running_no} is already {item.status}.")
            item.set_status(target, at=at)
        settle_subscription_status(locked, at=at)
        verb = "Deactivated" if allow_reinstate else "Retired"
        record(
            locked,
            actor=actor,
            event_code=E.DEACTIVATE,
            at=at,
            notification=N.BILLING_CANCELED,
            generate_mail=generate_mail,
            summary=f"{verb} item(s) {_nos(running_nos)}; subscription {locked.sub.status}.",
        )
    return locked.sub


def reinstate_items(
    *,
    subscription: Subscription,
    running_nos: list[int],
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Subscription:
    """Bill the named items again. A Deactivated subscription becomes Active;
    if its billing date has already passed it is billed at once and its dates
    re-based on that payment (docs/lifecycle.md, SM 1.0 manual cycle)."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        refuse_if_not_ours(locked.sub)
        if locked.sub.status == S.FINISHED:
            raise TransitionNotAllowed(f"Subscription {locked.sub.display_id} is Finished.")
        for item in _pick_items(locked, running_nos):
            if item.status not in (IS.DEACTIVATED, IS.AWAITING_REINSTATE):
                raise TransitionNotAllowed(
                    f"Item {item.running_no} is {item.get_status_display()}; only Deactivated "
                    "or Awaiting reinstate items can be reinstated."
                )
            item.set_status(IS.ACTIVE, at=at)
        if locked.sub.status == S.DEACTIVATED:
            locked.sub.set_status(S.ACTIVE, at=at)
        record(
            locked,
            actor=actor,
            event_code=E.REINSTATE,
            at=at,
            notification=N.BILLING_REINSTATED,
            generate_mail=generate_mail,
            summary=f"Reinstated item(s) {_nos(running_nos)}; subscription {locked.sub.status}.",
        )
        overdue = locked.sub.status == S.ACTIVE and locked.sub.next_billing_date <= at
    if overdue:
        try:
            charge_next_interval(
                subscription=locked.sub,
                actor=actor,
                at=at,
                dates=NextDates.FROM_PAYMENT,
                on_decline=OnDecline.DUNNING,
                generate_mail=generate_mail,
                still=lambda again: not_due(again, at),
            )
        except ConcurrentChange:
            pass  # the schedule renewed it meanwhile: charged once, by the sweep
        locked.sub.refresh_from_db()
    return locked.sub


def await_reinstate(
    *,
    subscription: Subscription,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Subscription:
    """SM 1.0: make an automatic subscription wait for the customer's
    confirmation: Active items -> AwaitingReinstate, subscription -> Deactivated."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        sub = locked.sub
        refuse_if_not_ours(sub)
        if sub.sm_version != SMVersion.V1:
            raise TransitionNotAllowed(
                "Await Reinstate is a Subscription Management 1.0 action; "
                "use Switch to Manual Renewal."
            )
        active = locked.items_in(IS.ACTIVE)
        if sub.status != S.ACTIVE or not active:
            raise TransitionNotAllowed(
                f"Only an Active subscription with Active items can await reinstatement "
                f"(this one is {sub.status})."
            )
        for item in active:
            item.set_status(IS.AWAITING_REINSTATE, at=at)
        sub.set_status(S.DEACTIVATED, at=at)
        record(
            locked,
            actor=actor,
            event_code=E.DEACTIVATE,
            at=at,
            notification=N.BILLING_CANCELED,
            generate_mail=generate_mail,
            email_kind=CustomerEmail.Kind.INVITATION,  # it has not ended: it awaits confirmation
            summary="Await Reinstate: renews only when the customer confirms.",
        )
    return sub


def switch_renewal_type(
    *,
    subscription: Subscription,
    renewal_type: str,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Subscription:
    """SM 2.0: flip Automatic/Manual. Statuses do not change (docs/lifecycle.md)."""
    at = now_or(at, subscription)
    if renewal_type not in RenewalType.values:
        raise InvalidInput(
            "Renewal type must be Automatic or Manual.",
            fields={"RenewalType": "Must be Automatic or Manual."},
        )
    with transaction.atomic():
        locked = lock(subscription)
        sub = locked.sub
        refuse_if_not_ours(sub)
        if sub.sm_version != SMVersion.V2:
            raise TransitionNotAllowed(
                "Renewal type exists in Subscription Management 2.0 only; "
                "in 1.0 deactivate or reinstate items instead."
            )
        if sub.status == S.FINISHED:
            raise TransitionNotAllowed(f"Subscription {sub.display_id} is Finished.")
        if sub.renewal_type == renewal_type:
            raise TransitionNotAllowed(f"The renewal type is already {renewal_type}.")
        old, sub.renewal_type = sub.renewal_type, renewal_type
        record(
            locked,
            actor=actor,
            event_code=E.RENEWAL_TYPE,
            at=at,
            notification=N.RENEWAL_TYPE_CHANGED,
            generate_mail=generate_mail,
            summary=f"Renewal type changed from {old} to {renewal_type}.",
        )
    return sub


def remove_item(
    *, subscription: Subscription, running_no: int, actor: Actor, at: datetime | None = None
) -> Subscription:
    """Remove an item for good; allowed while at least two are not removed."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        refuse_if_not_ours(locked.sub)
        item = locked.item(running_no)
        if item.status == IS.REMOVED:
            raise NotFound(f"Item {running_no} has been removed.")
        if len([i for i in locked.items if i.status != IS.REMOVED]) < 2:
            raise TransitionNotAllowed(
                "The last item cannot be removed; deactivate the subscription instead."
            )
        item.set_status(IS.REMOVED, at=at)
        settle_subscription_status(locked, at=at)
        record(
            locked,
            actor=actor,
            event_code=E.REMOVE,
            at=at,
            summary=f"Removed item {running_no} ({item.product.name}).",
        )
    return locked.sub


# How far ahead a next billing date may be moved: further has no business
# meaning, and dates computed from it would leave the calendar (year 9999).
MAX_YEARS_AHEAD = 10


def change_next_billing_date(
    *,
    subscription: Subscription,
    next_billing_date: datetime,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Subscription:
    """Move the next billing date (must be in the future); later dates follow
    from it as the new anchor."""
    at = now_or(at, subscription)
    if next_billing_date.tzinfo is None:
        raise InvalidInput(
            "Give the date with a time zone (RFC 3339).",
            fields={"NextBillingDate": "Needs a time zone."},
        )
    if next_billing_date <= at:
        raise InvalidInput(
            "The next billing date must be in the future.",
            fields={"NextBillingDate": "Must be in the future."},
        )
    if next_billing_date > at + relativedelta(years=MAX_YEARS_AHEAD):
        raise InvalidInput(
            f"The next billing date can be at most {MAX_YEARS_AHEAD} years ahead.",
            fields={"NextBillingDate": f"At most {MAX_YEARS_AHEAD} years ahead."},
        )
    with transaction.atomic():
        locked = lock(subscription)
        sub = locked.sub
        refuse_if_not_ours(sub)
        if sub.status in (S.FINISHED, S.NEW):
            raise TransitionNotAllowed(
                f"A {sub.status} subscription has no billing date to change."
            )
        old = sub.next_billing_date
        sub.rebase(next_billing_date, interval_no=sub.last_interval_no + 1)
        record(
            locked,
            actor=actor,
            event_code=E.NEXT_BILLING_DATE,
            at=at,
            notification=N.BILLING_DATE_EXTENDED,
            generate_mail=generate_mail,
            summary=f"Next billing date moved from {old:%Y-%m-%d} to "
            f"{sub.next_billing_date:%Y-%m-%d}.",
        )
    return sub


def hand_over_to_client(
    *, subscription: Subscription, actor: Actor, at: datetime | None = None
) -> Subscription:
    """The client takes over this subscription's billing; the schedule and
    the platform's actions leave it alone from now on."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        sub = locked.sub
        if sub.status in (S.FINISHED, S.HANDLED_BY_CLIENT):
            raise TransitionNotAllowed(f"A {sub.status} subscription cannot be handed over.")
        for item in locked.items_in(IS.ACTIVE, IS.DEACTIVATED, IS.AWAITING_REINSTATE):
            item.set_status(IS.HANDLED_BY_CLIENT, at=at)
        sub.set_status(S.HANDLED_BY_CLIENT, at=at)
        record(
            locked,
            actor=actor,
            event_code=E.HANDOVER,
            at=at,
            summary="Billing handed over to the client.",
        )
    return sub


def add_note(
    *, subscription: Subscription, text: str, actor: Actor, at: datetime | None = None
) -> None:
    """A free-text note in the history; changes nothing else."""
    text = text.strip()
    if not text:
        raise InvalidInput("Write a note first.", fields={"text": "Write a note first."})
    with transaction.atomic():
        locked = lock(subscription)
        record(locked, actor=actor, event_code=E.NOTE, at=now_or(at, subscription), summary=text)


def _nos(running_nos: list[int]) -> str:
    return ", ".join(str(no) for no in sorted(set(running_nos)))
