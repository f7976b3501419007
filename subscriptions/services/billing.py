"""Money moving: renewals, dunning, late and early payment, offline payment,
refunds and chargebacks (SPEC 4, 5).

A charge is three steps so that a crash can never charge twice:
1. in a transaction, the renewal purchase for (subscription, interval) is
   created or reused (a unique key holds one per interval) and marked pending;
2. the gateway is called outside any transaction with an idempotency key of
   subscription + interval + attempt number;
3. in a transaction, the answer is recorded together with the state change.
A crash between 2 and 3 leaves the purchase pending with the same attempt
number, so the next try sends the same key and the gateway replays its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from commerce.gateway import ChargeResult, Outcome, get_gateway
from commerce.models import Purchase, PurchaseItem

from .. import notifications as n
from ..errors import InvalidInput, TransitionNotAllowed
from ..models import ItemStatus, Subscription, SubscriptionStatus
from .common import (
    SYSTEM,
    Actor,
    Locked,
    lock,
    now_or,
    record,
    refuse_if_not_ours,
    settle_subscription_status,
)
from .signup import _start_paid_interval

S, IS = SubscriptionStatus, ItemStatus


@dataclass
class ChargeOutcome:
    """``status`` is the API's TransactionStatus: Success, Rejected, Error, Pending."""

    status: str
    subscription: Subscription
    purchase: Purchase | None = None
    message: str = ""


# --- the charge itself --------------------------------------------------------


def _open_renewal_purchase(locked: Locked, *, at: datetime) -> Purchase:
    """The renewal purchase of the next interval, created once, reused by retries."""
    sub = locked.sub
    interval_no = sub.last_interval_no + 1
    items = locked.items_in(IS.ACTIVE)
    if not items:
        raise TransitionNotAllowed(f"Subscription {sub.display_id} has no Active item to bill.")
    purchase, created = Purchase.objects.get_or_create(
        subscription=sub,
        interval_no=interval_no,
        category=Purchase.Category.RENEWAL,
        defaults=dict(
            client_id=sub.client_id,
            customer_id=sub.customer_id,
            status=Purchase.Status.PENDING,
            currency=sub.currency,
            total=0,
            payment_method_id=sub.payment_method_id,
            created_at=at,
        ),
    )
    if purchase.status in (Purchase.Status.PAID, Purchase.Status.PENDING) and not created:
        return purchase
    # New, or a retry after a decline: bill the items Active now, at today's price.
    purchase.items.all().delete()
    PurchaseItem.objects.bulk_create(
        PurchaseItem(
            purchase=purchase,
            running_no=no,
            product_id=item.product_id,
            quantity=item.quantity,
            unit_price=item.unit_price,
            amount=item.line_amount,
            subscription_item=item,
            interval_no=interval_no,
        )
        for no, item in enumerate(items, start=1)
    )
    purchase.total = sub.billing_amount(items)
    purchase.status = Purchase.Status.PENDING
    purchase.payment_method_id = sub.payment_method_id
    purchase.save()
    return purchase


def charge_next_interval(
    *,
    subscription: Subscription,
    actor: Actor,
    at: datetime | None = None,
    rebase: bool,
    dunning_on_decline: bool,
    generate_mail: bool = True,
    reset_billing_interval: bool = False,
) -> ChargeOutcome:
    """Charge the subscription's next interval once (see the module doc)."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        refuse_if_not_ours(locked.sub)
        purchase = _open_renewal_purchase(locked, at=at)
        if purchase.status == Purchase.Status.PAID:
            return ChargeOutcome("Success", locked.sub, purchase, "Already charged.")
        if not locked.sub.payment_method.is_online:
            return ChargeOutcome("Pending", locked.sub, purchase, "Awaiting offline payment.")
        key = f"renewal:{locked.sub.pk}:{purchase.interval_no}:{purchase.charge_attempts + 1}"
    result = get_gateway().charge(purchase.total, purchase.currency, locked.sub.payment_method, key)
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if purchase.status == Purchase.Status.PAID:  # a concurrent attempt recorded it
            return ChargeOutcome("Success", Subscription.objects.get(pk=subscription.pk), purchase)
        purchase.charge_attempts += 1
        if result.approved:
            purchase.status, purchase.paid_at = Purchase.Status.PAID, at
            purchase.gateway_reference = result.reference
            purchase.save()
            sub = apply_paid_renewal(
                purchase,
                actor=actor,
                at=at,
                rebase=rebase,
                generate_mail=generate_mail,
                reset_billing_interval=reset_billing_interval,
            )
            return ChargeOutcome("Success", sub, purchase)
        return _record_failed_charge(
            purchase,
            result,
            actor=actor,
            at=at,
            dunning_on_decline=dunning_on_decline,
            generate_mail=generate_mail,
        )


def _record_failed_charge(
    purchase: Purchase,
    result: ChargeResult,
    *,
    actor: Actor,
    at: datetime,
    dunning_on_decline: bool,
    generate_mail: bool,
) -> ChargeOutcome:
    declined = result.outcome == Outcome.DECLINED
    purchase.status = Purchase.Status.DECLINED if declined else Purchase.Status.FAILED
    purchase.decline_reason = result.message
    purchase.save()
    locked = lock(purchase.subscription_id)  # type: ignore[arg-type]
    if declined and dunning_on_decline and locked.sub.status == S.ACTIVE:
        enter_dunning(
            locked,
            actor=actor,
            at=at,
            generate_mail=generate_mail,
            reason=f"Renewal charge declined: {result.message}",
        )
    return ChargeOutcome("Rejected" if declined else "Error", locked.sub, purchase, result.message)


def apply_paid_renewal(
    purchase: Purchase,
    *,
    actor: Actor,
    at: datetime,
    rebase: bool,
    generate_mail: bool = True,
    reset_billing_interval: bool = False,
) -> Subscription:
    """A renewal purchase is paid: count the interval, advance the dates,
    bring a Grace/Hold subscription back to Active, and in SM 1.0 send
    manual-every-interval items back to AwaitingReinstate."""
    locked = lock(purchase.subscription_id)  # type: ignore[arg-type]
    sub = locked.sub
    interval_no = purchase.interval_no or sub.last_interval_no + 1
    if sub.last_interval_no >= interval_no:
        return sub  # already counted
    charged = set(purchase.items.values_list("subscription_item_id", flat=True))
    sub.last_interval_no = interval_no
    for item in locked.items:
        if item.pk in charged:
            item.last_interval_no += 1
    if sub.status in (S.GRACE, S.HOLD, S.DEACTIVATED):
        sub.set_status(S.ACTIVE, at=at)
    if rebase or reset_billing_interval:
        sub.rebase(at, interval_no=interval_no)
    else:
        sub.next_billing_date = sub.billing_date_of(interval_no + 1)
    if sub.sm_version == "1.0":
        for item in locked.items_in(IS.ACTIVE):
            if item.product.renewal_mode == "manual" and item.product.is_one_time_rebilling:
                item.set_status(IS.AWAITING_REINSTATE, at=at)
        settle_subscription_status(locked, at=at)
    payload = n.purchase_payload(purchase, [(sub, locked.items)], "renewed")
    record(
        locked,
        actor=actor,
        event_code="renewed",
        at=at,
        notification=n.PAID_ORDER,
        payload=payload,
        purchase=purchase,
        generate_mail=generate_mail,
        summary=f"Renewed: interval {interval_no} paid ({purchase.total} {purchase.currency}, "
        f"purchase {purchase.pk}); next billing date {sub.next_billing_date:%Y-%m-%d}.",
    )
    return sub


# --- the schedule -------------------------------------------------------------


def renew_due(*, subscription: Subscription, at: datetime | None = None) -> str:
    """What the schedule does for one subscription whose billing date has come.

    Returns what happened: ``skipped``, ``finished``, ``manual``, ``invoiced``,
    ``charged``, ``declined`` or ``error``."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        sub = locked.sub
        if sub.status != S.ACTIVE or sub.next_billing_date > at:
            return "skipped"  # HandledByClient, not due, or already handled
        if _finish_completed_items(locked, at=at) and sub.status == S.FINISHED:
            return "finished"
        if sub.renewal_type == "Manual":
            enter_dunning(
                locked,
                actor=SYSTEM,
                at=at,
                reason="Manual renewal: the billing date passed without payment.",
            )
            return "manual"
        if not sub.payment_method.is_online:
            _open_renewal_purchase(locked, at=at)
            enter_dunning(
                locked, actor=SYSTEM, at=at, reason="Renewal invoice issued; awaiting payment."
            )
            return "invoiced"
    outcome = charge_next_interval(
        subscription=sub, actor=SYSTEM, at=at, rebase=False, dunning_on_decline=True
    )
    return {"Success": "charged", "Rejected": "declined"}.get(outcome.status, "error")


def _finish_completed_items(locked: Locked, *, at: datetime) -> bool:
    """Items whose billing events are all done become Finished (SPEC 4,
    last billing event reached). Returns whether anything changed."""
    done = [i for i in locked.items_in(IS.ACTIVE) if i.billing_events_done]
    if not done:
        return False
    for item in done:
        item.set_status(IS.FINISHED, at=at)
    settle_subscription_status(locked, at=at)
    record(
        locked,
        actor=SYSTEM,
        event_code="finished",
        at=at,
        notification=n.BILLING_CANCELED,
        summary=f"Last billing event reached for item(s) "
        f"{', '.join(str(i.running_no) for i in done)}; "
        f"subscription {locked.sub.status}.",
    )
    return True


def enter_dunning(
    locked: Locked, *, actor: Actor, at: datetime, reason: str, generate_mail: bool = True
) -> None:
    """An unpaid renewal: Grace, or Hold with zero grace days, or Deactivated
    with zero grace and hold days (SPEC 4)."""
    client = locked.sub.client
    if client.grace_period_days > 0:
        locked.sub.set_status(S.GRACE, at=at)
        code, notification = "grace", n.ON_GRACE
    elif client.hold_days > 0:
        locked.sub.set_status(S.HOLD, at=at)
        code, notification = "hold", n.ON_HOLD
    else:
        _deactivate_all(locked, at=at)
        code, notification = "deactivate", n.BILLING_CANCELED
    record(
        locked,
        actor=actor,
        event_code=code,
        at=at,
        notification=notification,
        generate_mail=generate_mail,
        summary=f"{reason} Subscription {locked.sub.status}.",
    )


def advance_dunning(*, subscription: Subscription, at: datetime | None = None) -> str | None:
    """Grace expired -> Hold; Hold expired -> Deactivated. Returns the new
    status, or None when nothing was due."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        sub, client = locked.sub, locked.sub.client
        if sub.status == S.GRACE and at >= sub.status_changed_at + timedelta(
            days=client.grace_period_days
        ):
            if client.hold_days > 0:
                sub.set_status(S.HOLD, at=at)
                record(
                    locked,
                    actor=SYSTEM,
                    event_code="hold",
                    at=at,
                    notification=n.ON_HOLD,
                    summary="Grace period expired unpaid: on Hold.",
                )
                return sub.status
        elif not (
            sub.status == S.HOLD and at >= sub.status_changed_at + timedelta(days=client.hold_days)
        ):
            return None
        _deactivate_all(locked, at=at)
        record(
            locked,
            actor=SYSTEM,
            event_code="deactivate",
            at=at,
            notification=n.BILLING_CANCELED,
            summary="Unpaid after grace and hold: Deactivated.",
        )
        return sub.status


def _deactivate_all(locked: Locked, *, at: datetime) -> None:
    for item in locked.items_in(IS.ACTIVE, IS.AWAITING_REINSTATE):
        item.set_status(IS.DEACTIVATED, at=at)
    settle_subscription_status(locked, at=at)


# --- payments asked for by a person ----------------------------------------


def pay_overdue(
    *,
    subscription: Subscription,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> ChargeOutcome:
    """Late payment in Grace or Hold: back to Active, and the next billing
    date becomes payment date + interval (SPEC 4)."""
    if subscription.status not in (S.GRACE, S.HOLD):
        raise TransitionNotAllowed(
            f"Only a subscription in Grace or Hold has an overdue payment "
            f"(this one is {subscription.status})."
        )
    return charge_next_interval(
        subscription=subscription,
        actor=actor,
        at=at,
        rebase=True,
        dunning_on_decline=False,
        generate_mail=generate_mail,
    )


def renew_early(
    *,
    subscription: Subscription,
    actor: Actor,
    reset_billing_interval: bool = False,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> ChargeOutcome:
    """Charge the next interval now. The remaining time is kept unless
    ``reset_billing_interval``, which starts the new interval today."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        refuse_if_not_ours(locked.sub)
        if locked.sub.status != S.ACTIVE or not locked.items_in(IS.ACTIVE):
            raise TransitionNotAllowed(
                f"Only an Active subscription with Active items can be renewed early "
                f"(this one is {locked.sub.status})."
            )
        if not locked.sub.payment_method.is_online:
            raise TransitionNotAllowed("Invoice subscriptions are renewed by Mark as paid.")
        record(
            locked,
            actor=actor,
            event_code="renewalReq",
            at=at,
            summary="Renewal requested"
            + (" with a new billing interval." if reset_billing_interval else "."),
        )
    return charge_next_interval(
        subscription=subscription,
        actor=actor,
        at=at,
        rebase=False,
        dunning_on_decline=False,
        generate_mail=generate_mail,
        reset_billing_interval=reset_billing_interval,
    )


def mark_purchase_paid(
    *, purchase: Purchase, actor: Actor, generate_mail: bool = True, at: datetime | None = None
) -> Purchase:
    """Record an offline (invoice) payment: a sign-up's ``New`` subscriptions
    start their first interval; a renewal invoice counts as that renewal,
    keeping the schedule (the invoice was for that interval)."""
    at = now_or(at, purchase)
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if (
            purchase.status != Purchase.Status.PENDING
            or purchase.payment_method is None
            or purchase.payment_method.is_online
        ):
            raise TransitionNotAllowed(
                f"Purchase {purchase.pk} is not an unpaid invoice "
                f"(it is {purchase.get_status_display()})."
            )
        purchase.status, purchase.paid_at = Purchase.Status.PAID, at
        purchase.save(update_fields=["status", "paid_at"])
        if purchase.category == Purchase.Category.RENEWAL:
            apply_paid_renewal(
                purchase, actor=actor, at=at, rebase=False, generate_mail=generate_mail
            )
            return purchase
        subs = []
        sub_ids = set(
            purchase.items.exclude(subscription_item=None).values_list(
                "subscription_item__subscription_id", flat=True
            )
        )
        for sub_id in sorted(sub_ids):
            locked = lock(sub_id)
            _start_paid_interval(locked, at=at)
            record(
                locked,
                actor=actor,
                event_code="new",
                at=at,
                summary=f"Offline payment received (purchase {purchase.pk}); "
                f"status {locked.sub.status}.",
            )
            subs.append((locked.sub, locked.items))
        n.queue(
            purchase,
            n.PAID_ORDER,
            n.purchase_payload(purchase, subs, "new"),
            generate_mail=generate_mail,
        )
    return purchase


# --- money back ------------------------------------------------------------------


def refund(
    *,
    purchase: Purchase,
    actor: Actor,
    amount: Decimal | None = None,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Purchase:
    """Refund all (``amount=None``) or part of a paid purchase. A full refund
    deactivates the subscription; a partial one changes nothing else."""
    at = now_or(at, purchase)
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        _refuse_unless_paid(purchase)
        remaining = purchase.total - purchase.refunded_amount
        amount = remaining if amount is None else amount
        if not Decimal("0") < amount <= remaining:
            raise InvalidInput(
                f"Refund between 0.01 and {remaining} {purchase.currency}.",
                fields={"amount": f"At most {remaining}."},
            )
        purchase.refunded_amount += amount
        full = purchase.refunded_amount == purchase.total
        purchase.status = Purchase.Status.REFUNDED if full else Purchase.Status.PARTIALLY_REFUNDED
        purchase.save(update_fields=["refunded_amount", "status"])
        what = f"{'Full' if full else 'Partial'} refund of {amount} {purchase.currency}"
        _money_back(
            purchase,
            actor=actor,
            at=at,
            full=full,
            summary=what,
            notification=n.REFUND if full else n.PARTIAL_REFUND,
            generate_mail=generate_mail,
        )
    return purchase


def chargeback(*, purchase: Purchase, actor: Actor, at: datetime | None = None) -> Purchase:
    """The card holder's bank took the money back: like a full refund."""
    at = now_or(at, purchase)
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        _refuse_unless_paid(purchase)
        purchase.status = Purchase.Status.CHARGEBACK
        purchase.refunded_amount = purchase.total
        purchase.save(update_fields=["refunded_amount", "status"])
        _money_back(
            purchase,
            actor=actor,
            at=at,
            full=True,
            notification=n.CHARGEBACK,
            summary=f"Chargeback of {purchase.total} {purchase.currency}",
            generate_mail=False,
        )
    return purchase


def _refuse_unless_paid(purchase: Purchase) -> None:
    if purchase.status not in (Purchase.Status.PAID, Purchase.Status.PARTIALLY_REFUNDED):
        raise TransitionNotAllowed(
            f"Purchase {purchase.pk} is {purchase.get_status_display()}; only paid purchases "
            "can be refunded or charged back."
        )


def _money_back(
    purchase: Purchase,
    *,
    actor: Actor,
    at: datetime,
    full: bool,
    summary: str,
    notification: str,
    generate_mail: bool,
) -> None:
    if purchase.subscription_id is None:
        n.queue(
            purchase,
            notification,
            n.purchase_payload(purchase, [], "deactivate"),
            generate_mail=generate_mail,
        )
        return
    locked = lock(purchase.subscription_id)
    if full and locked.sub.status not in (S.FINISHED, S.HANDLED_BY_CLIENT):
        _deactivate_all(locked, at=at)
    payload = n.purchase_payload(purchase, [(locked.sub, locked.items)], "deactivate")
    record(
        locked,
        actor=actor,
        event_code="deactivate" if full else "partialRefund",
        at=at,
        notification=notification,
        payload=payload,
        purchase=purchase,
        generate_mail=generate_mail,
        summary=f"{summary} (purchase {purchase.pk}); subscription {locked.sub.status}.",
    )
