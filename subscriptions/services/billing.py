"""Money moving: renewals, dunning, late and early payment, offline payment,
refunds and chargebacks (docs/lifecycle.md, docs/renewals.md).

A charge is three steps so that a crash can never charge twice:
1. in a transaction, the renewal purchase for (subscription, interval) is
   created or reused (a unique key holds one per interval) and marked pending
   (``open_renewal_purchase``);
2. the gateway is called outside any transaction with an idempotency key of
   subscription + interval + attempt number (``renewal_key``);
3. in a transaction, the answer is recorded together with the state change
   (``record_charge``).
A crash between 2 and 3 leaves the purchase pending with the same attempt
number, so the next try sends the same key and the gateway replays its answer.

These functions are the renewal rule. The renewal engine's set-based path
(``subscriptions.renewal_sql``) is an optimisation of one branch of it, the
plain paid renewal (``is_plain_renewal``), and writes the rows that
``paid_renewal`` computes; ``tests/subscriptions/test_renewal_contract.py``
holds the two equal.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from commerce.bulk import new
from commerce.documents import invoice_for, issue_credit_note, purchase_lines
from commerce.gateway import ChargeResult, Outcome, PaymentKind, get_gateway
from commerce.models import (
    Client,
    Document,
    DocumentKind,
    Product,
    Purchase,
    PurchaseItem,
    RefundReason,
    SMVersion,
)
from commerce.money import split_vat
from customers.models import CustomerEmail, PaymentMethod

from ..errors import ConcurrentChange, NotFound, RefundDeclined, TransitionNotAllowed
from ..models import (
    EventCode,
    ItemStatus,
    RenewalType,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from ..notifications import outbox
from ..notifications.payloads import purchase_payload
from ..notifications.types import NotificationType
from .common import (
    SYSTEM,
    Actor,
    Locked,
    TransactionStatus,
    Written,
    change_rows,
    lock,
    now_or,
    record,
    refuse_if_not_ours,
    save,
    settle_subscription_status,
    write,
)
from .signup import start_paid_interval

S, IS, N, E = SubscriptionStatus, ItemStatus, NotificationType, EventCode
EmailKind = CustomerEmail.Kind
T = TransactionStatus


class NextDates(enum.Enum):
    """Where a paid interval puts the next billing date."""

    SCHEDULE = "schedule"  # the interval after the paid one, from the anchor
    FROM_PAYMENT = "from_payment"  # the payment starts the new interval (late or reset)


class OnDecline(enum.Enum):
    """What a declined renewal charge does to an Active subscription."""

    DUNNING = "dunning"  # Grace, Hold or Deactivated (the schedule's charge)
    NOTHING = "nothing"  # a person asked; they see the decline


class RenewalOutcome(enum.StrEnum):
    """What the schedule did for one subscription whose billing date came."""

    SKIPPED = "skipped"  # not due (any more), or handled by the client
    FINISHED = "finished"  # its last billing event was reached
    MANUAL = "manual"  # manual renewal: into dunning, nothing charged
    INVOICED = "invoiced"  # invoice issued: into dunning until paid
    CHARGED = "charged"
    DECLINED = "declined"
    ERROR = "error"  # transient gateway error: try again later


@dataclass
class ChargeOutcome:
    """``status`` is the API's TransactionStatus. ``recorded`` is False when
    another attempt had already recorded this charge."""

    status: TransactionStatus
    subscription: Subscription
    purchase: Purchase | None = None
    message: str = ""
    recorded: bool = True


# --- the renewal purchase --------------------------------------------------------


def renewal_key(sub_id: int, interval_no: int, attempt: int) -> str:
    """The gateway idempotency key of a renewal charge attempt."""
    return f"renewal:{sub_id}:{interval_no}:{attempt}"


def renewal_purchase(sub: Subscription, items: list[SubscriptionItem], *, at: datetime) -> Purchase:
    """The (unsaved) pending purchase of the subscription's next interval,
    billing its Active items."""
    return new(
        Purchase,
        client_id=sub.client_id,
        customer_id=sub.customer_id,
        subscription_id=sub.pk,
        category=Purchase.Category.RENEWAL,
        status=Purchase.Status.PENDING,
        interval_no=sub.last_interval_no + 1,
        currency=sub.currency,
        total=sub.billing_amount(items),
        payment_method_id=sub.payment_method_id,
        created_at=at,
    )


def renewal_lines(purchase: Purchase, items: list[SubscriptionItem]) -> list[PurchaseItem]:
    """A line per Active item, at the item's price now (unsaved)."""
    return [
        new(
            PurchaseItem,
            purchase_id=purchase.pk,
            running_no=no,
            product_id=item.product_id,
            quantity=item.quantity,
            unit_price=item.unit_price,
            amount=item.line_amount,
            subscription_item_id=item.pk,
            interval_no=purchase.interval_no,
        )
        for no, item in enumerate((i for i in items if i.status == IS.ACTIVE), start=1)
    ]


def open_renewal_purchase(locked: Locked, *, at: datetime) -> Purchase:
    """The renewal purchase of the next interval, created once, reused by retries."""
    sub = locked.sub
    items = locked.items_in(IS.ACTIVE)
    if not items:
        raise TransitionNotAllowed(f"Subscription {sub.display_id} has no Active item to bill.")
    purchase = Purchase.objects.filter(
        subscription=sub, interval_no=sub.last_interval_no + 1, category=Purchase.Category.RENEWAL
    ).first()
    if purchase is None:
        purchase = renewal_purchase(sub, items, at=at)
        purchase.save()
    elif purchase.status in (Purchase.Status.PAID, Purchase.Status.PENDING):
        return purchase
    else:
        # A retry after a decline: bill the items Active now, at today's price.
        purchase.items.all().delete()
        purchase.total = sub.billing_amount(items)
        purchase.status = Purchase.Status.PENDING
        purchase.payment_method_id = sub.payment_method_id
        purchase.save()
    PurchaseItem.objects.bulk_create(renewal_lines(purchase, items))
    return purchase


# --- which branch of the schedule -------------------------------------------------


def is_plain_renewal(sub: Subscription, items: list[SubscriptionItem]) -> bool:
    """Whether a due Active subscription renews on the plain branch of
    ``renew_due``: it is charged (card, automatic renewal, an Active item,
    none at its last billing event), and a paid charge changes nothing but
    the interval count and the dates (no SM 1.0 manual item to move to
    AwaitingReinstate). The set-based path handles exactly these."""
    active = [i for i in items if i.status == IS.ACTIVE]
    return (
        bool(active)
        and sub.payment_method.is_online
        and sub.renewal_type != RenewalType.MANUAL
        and not any(i.billing_events_done for i in active)
        and not (
            sub.sm_version == SMVersion.V1
            and any(i.product.renewal_mode == Product.RenewalMode.MANUAL for i in active)
        )
    )


def renewed_by_customer(sub: Subscription, items: list[SubscriptionItem]) -> bool:
    """Manual renewal: the schedule never charges it; the customer renews
    (SM 2.0 ``Manual``, or SM 1.0 items awaiting the customer's confirmation).
    Such a customer is sent renewal invitations, not charge reminders."""
    if sub.sm_version == SMVersion.V2:
        return sub.renewal_type == RenewalType.MANUAL
    return any(i.status == IS.AWAITING_REINSTATE for i in items)


def dunning_target(client: Client) -> tuple[SubscriptionStatus, EventCode, NotificationType]:
    """Where an unpaid renewal goes: Grace, or Hold with zero grace days, or
    Deactivated with zero grace and hold days (docs/lifecycle.md)."""
    if client.grace_period_days > 0:
        return S.GRACE, E.GRACE, N.ON_GRACE
    if client.hold_days > 0:
        return S.HOLD, E.HOLD, N.ON_HOLD
    return S.DEACTIVATED, E.DEACTIVATE, N.BILLING_CANCELED


# --- the charge itself --------------------------------------------------------


def charge_next_interval(
    *,
    subscription: Subscription,
    actor: Actor,
    at: datetime | None = None,
    dates: NextDates,
    on_decline: OnDecline,
    generate_mail: bool = True,
    still: Callable[[Subscription], str | None] | None = None,
) -> ChargeOutcome:
    """Charge the subscription's next interval once (see the module doc).
    ``still``: what made the caller charge, checked again under this lock
    (None: it holds; else why not). Between the caller's look and this lock
    another worker or person may have renewed or changed the subscription —
    its next interval is then not what the caller meant to charge: refused
    with ``ConcurrentChange``, nothing charged."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        refuse_if_not_ours(locked.sub)
        if still is not None and (reason := still(locked.sub)) is not None:
            raise ConcurrentChange(reason)
        purchase = open_renewal_purchase(locked, at=at)
        if purchase.status == Purchase.Status.PAID:
            return ChargeOutcome(T.SUCCESS, locked.sub, purchase, "Already charged.")
        if not locked.sub.payment_method.is_online:
            return ChargeOutcome(T.PENDING, locked.sub, purchase, "Awaiting offline payment.")
        key = renewal_key(locked.sub.pk, purchase.interval_no or 0, purchase.charge_attempts + 1)
    result = get_gateway().charge(purchase.total, purchase.currency, locked.sub.payment_method, key)
    return record_charge(
        purchase.pk,
        result,
        actor=actor,
        at=at,
        dates=dates,
        on_decline=on_decline,
        generate_mail=generate_mail,
    )


def record_charge(
    purchase_id: int,
    result: ChargeResult,
    *,
    actor: Actor,
    at: datetime,
    dates: NextDates,
    on_decline: OnDecline,
    generate_mail: bool = True,
) -> ChargeOutcome:
    """Step 3: record the gateway's answer on the pending renewal purchase
    with the state change it causes, in one transaction. A purchase another
    attempt has recorded meanwhile is left as it is (``recorded`` False)."""
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase_id)
        if purchase.status != Purchase.Status.PENDING:
            status = T.SUCCESS if purchase.status == Purchase.Status.PAID else T.REJECTED
            sub = Subscription.objects.get(pk=purchase.subscription_id or 0)
            return ChargeOutcome(status, sub, purchase, "Already recorded.", recorded=False)
        purchase.charge_attempts += 1
        if result.approved:
            purchase.status, purchase.paid_at = Purchase.Status.PAID, at
            purchase.gateway_reference = result.reference
            purchase.save()
            sub = apply_paid_renewal(
                purchase, actor=actor, at=at, dates=dates, generate_mail=generate_mail
            )
            return ChargeOutcome(T.SUCCESS, sub, purchase)
        declined = result.outcome == Outcome.DECLINED
        purchase.status = Purchase.Status.DECLINED if declined else Purchase.Status.FAILED
        purchase.decline_reason = result.message
        purchase.save()
        locked = lock(purchase.subscription_id)  # type: ignore[arg-type]
        if declined and on_decline == OnDecline.DUNNING and locked.sub.status == S.ACTIVE:
            enter_dunning(
                locked,
                actor=actor,
                at=at,
                generate_mail=generate_mail,
                reason=f"Renewal charge declined: {result.message}",
            )
        status = T.REJECTED if declined else T.ERROR
        return ChargeOutcome(status, locked.sub, purchase, result.message)


# The subscription columns ``paid_renewal`` may change (what a batch writes).
PAID_RENEWAL_FIELDS = [
    "last_interval_no",
    "next_billing_date",
    "anchor_date",
    "anchor_interval_no",
    "status",
    "status_changed_at",
    "end_date",
    "row_version",
]
# The item columns it may change: the interval count of the charged items,
# and in SM 1.0 the move of confirm-every-interval items to AwaitingReinstate.
PAID_RENEWAL_ITEM_FIELDS = ["last_interval_no", "status", "deactivation_date"]


def paid_renewal(
    locked: Locked,
    purchase: Purchase,
    *,
    charged: set[int],
    actor: Actor,
    at: datetime,
    dates: NextDates,
    generate_mail: bool = True,
    lines: list[PurchaseItem] | None = None,
) -> Written:
    """The rule of a paid renewal, on the locked rows in memory: count the
    interval (and on each charged item), advance the dates, bring a
    Grace/Hold subscription back to Active, and in SM 1.0 send
    confirm-every-interval items back to AwaitingReinstate. Returns the
    history, outbox and e-mail rows; the caller saves the changed rows and
    writes these (``apply_paid_renewal`` one at a time, the set-based path
    a batch at a time). ``lines``: the purchase's lines, if already known."""
    sub = locked.sub
    interval_no = purchase.interval_no or sub.last_interval_no + 1
    sub.last_interval_no = interval_no
    for item in locked.items:
        if item.pk in charged:
            item.last_interval_no += 1
    if sub.status in (S.GRACE, S.HOLD, S.DEACTIVATED):
        sub.set_status(S.ACTIVE, at=at)
    if dates == NextDates.FROM_PAYMENT:
        sub.rebase(at, interval_no=interval_no)
    else:
        sub.next_billing_date = sub.billing_date_of(interval_no + 1)
    if sub.sm_version == SMVersion.V1:
        for item in locked.items_in(IS.ACTIVE):
            product = item.product
            if product.renewal_mode == Product.RenewalMode.MANUAL and product.is_one_time_rebilling:
                item.set_status(IS.AWAITING_REINSTATE, at=at)
        settle_subscription_status(locked, at=at)
    return change_rows(
        locked,
        actor=actor,
        event_code=E.RENEWED,
        at=at,
        notification=N.PAID_ORDER,
        payload=purchase_payload(purchase, [(sub, locked.items)], E.RENEWED, lines=lines),
        purchase=purchase,
        generate_mail=generate_mail,
        summary=f"Renewed: interval {interval_no} paid ({purchase.total} {purchase.currency}, "
        f"purchase {purchase.pk}); next billing date {sub.next_billing_date:%Y-%m-%d}.",
    )


class Reconciled(enum.StrEnum):
    RECORDED = "recorded"  # the approved charge renewed the subscription
    REFUNDED = "refunded"  # it could no longer be applied: given back


def reconcile_charge(purchase_id: int, *, at: datetime) -> Reconciled | None:
    """A renewal charge the gateway approved but nobody recorded (a worker
    died between charging and recording): record it if the subscription can
    still take that interval — whatever changed meanwhile (switched to
    Manual, in Grace, items changed) —, else refund it with a history entry.
    Never left, never followed by "payment failed". ``None``: nothing to do
    (recorded meanwhile, or the gateway never approved it)."""
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase_id)
        if purchase.status != Purchase.Status.PENDING or purchase.subscription_id is None:
            return None
        key = renewal_key(
            purchase.subscription_id, purchase.interval_no or 0, purchase.charge_attempts + 1
        )
        gateway = get_gateway()
        answer = gateway.lookup(key)
        if answer is None or not answer.approved:
            return None
        locked = lock(purchase.subscription_id)
        sub = locked.sub
        charged = set(purchase.items.values_list("subscription_item_id", flat=True))
        if (
            sub.last_interval_no + 1 == purchase.interval_no
            and sub.status in (S.ACTIVE, S.GRACE, S.HOLD)
            and any(i.pk in charged for i in locked.items_in(IS.ACTIVE))
        ):
            record_charge(
                purchase.pk,
                answer,
                actor=SYSTEM,
                at=at,
                dates=NextDates.SCHEDULE,
                on_decline=OnDecline.DUNNING,
            )
            return Reconciled.RECORDED
        # The lock on the purchase is held across the refund, so nobody can
        # record this payment while it is being given back.
        refund = gateway.refund(key, purchase.total, purchase.currency, f"refund:{key}")
        if not refund.approved:
            return None  # tried again at the next sweep
        purchase.status, purchase.paid_at = Purchase.Status.REFUNDED, at
        purchase.refunded_amount, purchase.charge_attempts = (
            purchase.total,
            purchase.charge_attempts + 1,
        )
        purchase.gateway_reference = answer.reference
        purchase.save()
        record(
            locked,
            actor=SYSTEM,
            event_code=E.CHARGE_REFUNDED,
            at=at,
            notification=N.REFUND,
            payload=purchase_payload(purchase, [(sub, locked.items)], E.CHARGE_REFUNDED),
            purchase=purchase,
            summary=f"The renewal charge of {purchase.total} {purchase.currency} (purchase "
            f"{purchase.pk}) was approved but could no longer be applied (subscription "
            f"{sub.status}); refunded.",
        )
        return Reconciled.REFUNDED


def apply_paid_renewal(
    purchase: Purchase,
    *,
    actor: Actor,
    at: datetime,
    dates: NextDates,
    generate_mail: bool = True,
) -> Subscription:
    """A renewal purchase is paid: ``paid_renewal`` on the locked rows, saved
    and written in the caller's transaction."""
    locked = lock(purchase.subscription_id)  # type: ignore[arg-type]
    interval_no = purchase.interval_no or locked.sub.last_interval_no + 1
    if locked.sub.last_interval_no >= interval_no:
        return locked.sub  # already counted
    charged = set(purchase.items.values_list("subscription_item_id", flat=True))
    written = paid_renewal(
        locked,
        purchase,
        charged={pk for pk in charged if pk is not None},
        actor=actor,
        at=at,
        dates=dates,
        generate_mail=generate_mail,
    )
    save(locked)
    write([written])
    return locked.sub


# --- the schedule -------------------------------------------------------------


def renew_due(*, subscription: Subscription, at: datetime | None = None) -> RenewalOutcome:
    """What the schedule does for one subscription whose billing date has come."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        sub = locked.sub
        if not_due(sub, at):
            return RenewalOutcome.SKIPPED  # HandledByClient, not due, or already handled
        if _finish_completed_items(locked, at=at) and sub.status == S.FINISHED:
            return RenewalOutcome.FINISHED
        if not sub.payment_method.is_online:  # Automatic or Manual: an invoice
            invoice = open_renewal_purchase(locked, at=at)
            enter_dunning(
                locked,
                actor=SYSTEM,
                at=at,
                reason=f"Renewal invoice issued (purchase {invoice.pk}); awaiting payment.",
                purchase=invoice,
                email_kind=EmailKind.INVOICE,
            )
            return RenewalOutcome.INVOICED
        if sub.renewal_type == RenewalType.MANUAL:
            enter_dunning(
                locked,
                actor=SYSTEM,
                at=at,
                reason="Manual renewal: due; the customer is invited to renew.",
                email_kind=EmailKind.INVITATION,
            )
            return RenewalOutcome.MANUAL
    try:
        outcome = charge_next_interval(
            subscription=sub,
            actor=SYSTEM,
            at=at,
            dates=NextDates.SCHEDULE,
            on_decline=OnDecline.DUNNING,
            still=lambda again: not_due(again, at),
        )
    except ConcurrentChange:
        return RenewalOutcome.SKIPPED  # renewed (or changed) by another meanwhile
    if not outcome.recorded:
        return RenewalOutcome.SKIPPED  # the same charge, recorded by another attempt
    return RENEWAL_OUTCOME[outcome.status]


def not_due(sub: Subscription, at: datetime) -> str | None:
    """Why the schedule does not renew ``sub`` at ``at`` (None: Active and due)."""
    if sub.status != S.ACTIVE:
        return f"Subscription {sub.display_id} is {sub.status} now; nothing was charged."
    if sub.next_billing_date > at:
        return f"Subscription {sub.display_id} is not due any more; nothing was charged."
    return None


RENEWAL_OUTCOME = {
    T.SUCCESS: RenewalOutcome.CHARGED,
    T.REJECTED: RenewalOutcome.DECLINED,
    T.ERROR: RenewalOutcome.ERROR,
    T.PENDING: RenewalOutcome.INVOICED,
}


def _finish_completed_items(locked: Locked, *, at: datetime) -> bool:
    """Items whose billing events are all done become Finished (last billing
    event reached, docs/lifecycle.md). Returns whether anything changed."""
    done = [i for i in locked.items_in(IS.ACTIVE) if i.billing_events_done]
    if not done:
        return False
    for item in done:
        item.set_status(IS.FINISHED, at=at)
    settle_subscription_status(locked, at=at)
    record(
        locked,
        actor=SYSTEM,
        event_code=E.FINISHED,
        at=at,
        notification=N.BILLING_CANCELED,
        summary=f"Last billing event reached for item(s) "
        f"{', '.join(str(i.running_no) for i in done)}; "
        f"subscription {locked.sub.status}.",
    )
    return True


def enter_dunning(
    locked: Locked,
    *,
    actor: Actor,
    at: datetime,
    reason: str,
    generate_mail: bool = True,
    purchase: Purchase | None = None,
    email_kind: str | None = None,
) -> None:
    """An unpaid renewal goes where ``dunning_target`` says. ``email_kind``:
    what the customer is told while the subscription can still be renewed
    (an invoice, a renewal invitation) instead of "payment failed"."""
    status, code, notification = dunning_target(locked.sub.client)
    if status == S.DEACTIVATED:
        _deactivate_all(locked, at=at)
        email_kind = None  # it has ended: the deactivation e-mail says so
    else:
        locked.sub.set_status(status, at=at)
    record(
        locked,
        actor=actor,
        event_code=code,
        at=at,
        notification=notification,
        generate_mail=generate_mail,
        purchase=purchase,
        email_kind=email_kind,
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
                    event_code=E.HOLD,
                    at=at,
                    notification=N.ON_HOLD,
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
            event_code=E.DEACTIVATE,
            at=at,
            notification=N.BILLING_CANCELED,
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
    date becomes payment date + interval (docs/lifecycle.md)."""
    if reason := _not_overdue(subscription):
        raise TransitionNotAllowed(reason)
    return charge_next_interval(
        subscription=subscription,
        actor=actor,
        at=at,
        dates=NextDates.FROM_PAYMENT,
        on_decline=OnDecline.NOTHING,
        generate_mail=generate_mail,
        still=_not_overdue,  # paid meanwhile (two clicks, a retry): not the next interval
    )


def _not_overdue(sub: Subscription) -> str | None:
    if sub.status in (S.GRACE, S.HOLD):
        return None
    return (
        f"Only a subscription in Grace or Hold has an overdue payment (this one is {sub.status})."
    )


def renew_early(
    *,
    subscription: Subscription,
    actor: Actor,
    dates: NextDates = NextDates.SCHEDULE,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> ChargeOutcome:
    """Charge the next interval now. The remaining time is kept unless
    ``dates`` is ``FROM_PAYMENT`` (the API's ResetBillingInterval), which
    starts the new interval today."""
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
        requested = locked.sub.last_interval_no + 1
        record(
            locked,
            actor=actor,
            event_code=E.RENEWAL_REQUESTED,
            at=at,
            summary="Renewal requested"
            + (" with a new billing interval." if dates == NextDates.FROM_PAYMENT else "."),
        )
    return charge_next_interval(
        subscription=subscription,
        actor=actor,
        at=at,
        dates=dates,
        on_decline=OnDecline.NOTHING,
        generate_mail=generate_mail,
        # Renewed meanwhile (the schedule, a second click): not one more interval.
        still=lambda again: (
            None
            if again.last_interval_no + 1 == requested
            else f"Subscription {again.display_id} was renewed meanwhile; nothing more was charged."
        ),
    )


def renew_now(*, subscription: Subscription, actor: Actor) -> ChargeOutcome | Purchase:
    """**Renew now** (staff tab, portal): an invoice subscription gets its
    renewal invoice; a card in Grace or Hold pays the overdue renewal (the
    payment starts the new interval); an Active one renews early."""
    if not subscription.payment_method.is_online:
        return issue_renewal_invoice(subscription=subscription, actor=actor)
    if subscription.status in (S.GRACE, S.HOLD):
        return pay_overdue(subscription=subscription, actor=actor)
    return renew_early(subscription=subscription, actor=actor)


def issue_renewal_invoice(
    *,
    subscription: Subscription,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Purchase:
    """Renew by invoice, now: the renewal purchase of the next interval
    becomes an invoice (pending, paid by bank transfer) e-mailed to the
    customer; **Mark as paid** renews the subscription. For invoice
    subscriptions, and for a manual renewal whose customer chooses to pay by
    invoice rather than by card (an automatic card renewal is charged)."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        refuse_if_not_ours(locked.sub)
        sub = locked.sub
        if sub.status not in (S.ACTIVE, S.GRACE, S.HOLD) or not locked.items_in(IS.ACTIVE):
            raise TransitionNotAllowed(
                f"Only an Active, Grace or Hold subscription with Active items can be renewed "
                f"(this one is {sub.status})."
            )
        online = sub.payment_method.is_online
        if online and sub.status == S.ACTIVE and not renewed_by_customer(sub, locked.items):
            raise TransitionNotAllowed(
                f"{sub.display_id} renews automatically by card; it is not invoiced."
            )
        waiting = Purchase.objects.filter(
            subscription=sub,
            category=Purchase.Category.RENEWAL,
            interval_no=sub.last_interval_no + 1,
            status=Purchase.Status.PENDING,
            payment_method__kind=PaymentKind.INVOICE,
        ).first()
        if waiting is not None:
            raise TransitionNotAllowed(
                f"Invoice {waiting.pk} is already waiting for payment; mark it paid when the "
                "money arrives."
            )
        purchase = open_renewal_purchase(locked, at=at)
        if purchase.status == Purchase.Status.PAID:
            raise TransitionNotAllowed(f"The next interval of {sub.display_id} is already paid.")
        if online:  # the customer pays this renewal by invoice instead of by card
            purchase.payment_method = _invoice_method(sub)
            purchase.save(update_fields=["payment_method"])
        record(
            locked,
            actor=actor,
            event_code=E.RENEWAL_REQUESTED,
            at=at,
            notification=N.NEW_OFFLINE_PAYMENT,
            payload=purchase_payload(purchase, [(sub, locked.items)], E.RENEWAL_REQUESTED),
            purchase=purchase,
            generate_mail=generate_mail,
            summary=f"Renewal invoice issued (purchase {purchase.pk}, {purchase.total} "
            f"{purchase.currency}); awaiting payment.",
        )
        return purchase


def _invoice_method(sub: Subscription) -> PaymentMethod:
    """The customer's invoice payment method (created the first time)."""
    found = PaymentMethod.objects.filter(customer_id=sub.customer_id, kind=PaymentKind.INVOICE)
    return found.first() or PaymentMethod.objects.create(
        customer_id=sub.customer_id, kind=PaymentKind.INVOICE
    )


def mark_purchase_paid(
    *, purchase: Purchase, actor: Actor, generate_mail: bool = True, at: datetime | None = None
) -> Purchase:
    """Record an offline (invoice) payment: a sign-up's ``New`` subscriptions
    start their first interval; a renewal invoice counts as that renewal.
    Paid by its billing date, the schedule is kept (next billing date = old
    date + interval); paid later, the payment starts the new interval
    (payment date + interval), as for any late payment."""
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
            due = Subscription.objects.get(pk=purchase.subscription_id or 0).next_billing_date
            dates = NextDates.SCHEDULE if at <= due else NextDates.FROM_PAYMENT
            apply_paid_renewal(
                purchase, actor=actor, at=at, dates=dates, generate_mail=generate_mail
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
            start_paid_interval(locked, at=at)
            record(
                locked,
                actor=actor,
                event_code=E.NEW,
                at=at,
                summary=f"Offline payment received (purchase {purchase.pk}); "
                f"status {locked.sub.status}.",
            )
            subs.append((locked.sub, locked.items))
        outbox.notify_purchase(
            purchase,
            N.PAID_ORDER,
            purchase_payload(purchase, subs, E.NEW),
            generate_mail=generate_mail,
        )
    return purchase


# --- money back ------------------------------------------------------------------


@dataclass
class RefundQuote:
    """What a refund gives back (the rule ``refund`` applies; the Refund page
    previews it): the amount with its VAT split, credit-note lines, and
    whether it is the whole purchase (then the subscription is deactivated)."""

    purchase: Purchase
    amount: Decimal
    net: Decimal
    vat: Decimal
    lines: list[dict[str, str]]
    full: bool

    @property
    def effect(self) -> str:
        if not self.full:
            return "The subscription and its items keep their statuses."
        if self.purchase.subscription_id is None:
            return "Nothing else changes: this purchase has no subscription."
        return (
            f"Subscription S{self.purchase.subscription_id} and its items are deactivated "
            "(a full refund ends the service)."
        )


def refunded_quantities(purchase: Purchase) -> dict[str, int]:
    """Per purchase line (running number), the quantity credited so far."""
    done: dict[str, int] = {}
    for doc in Document.objects.filter(purchase=purchase, kind=DocumentKind.CREDIT_NOTE):
        for line in doc.lines:
            if line.get("running_no") and line.get("quantity"):
                key = str(line["running_no"])
                done[key] = done.get(key, 0) + int(line["quantity"])
    return done


def lines_left(purchase: Purchase) -> list[tuple[PurchaseItem, int]]:
    """Each purchase line with the quantity not yet credited."""
    credited = refunded_quantities(purchase)
    return [
        (item, item.quantity - credited.get(str(item.running_no), 0))
        for item in purchase.items.select_related("product").order_by("running_no")
    ]


def quote_refund(
    purchase: Purchase,
    *,
    amount: Decimal | None = None,
    quantities: dict[int, int] | None = None,
) -> RefundQuote:
    """The refund of ``amount``, or of ``quantities`` per purchase line
    (running number -> quantity), or (neither) of all that is left. Refused:
    an unpaid purchase, more than is left, a quantity more than the line has
    left to credit."""
    _refuse_unless_paid(purchase)
    remaining = purchase.total - purchase.refunded_amount
    lines: list[dict[str, str]] = []
    if quantities:
        left_of = {item.running_no: (item, left) for item, left in lines_left(purchase)}
        total = Decimal("0")
        for no, quantity in sorted(quantities.items()):
            if no not in left_of:
                raise NotFound(f"Purchase {purchase.pk} has no line {no}.")
            item, left = left_of[no]
            if not 0 < quantity <= left:
                raise TransitionNotAllowed(
                    f"Line {no} ({item.product.name}) has {left} left to refund.",
                    fields={"lines": f"Line {no}: at most {left}."},
                )
            line_amount = item.unit_price * quantity
            total += line_amount
            lines.append(
                {
                    "running_no": str(no),
                    "description": item.product.name,
                    "quantity": str(quantity),
                    "unit_price": str(item.unit_price),
                    "amount": str(line_amount),
                }
            )
        amount = total
    elif amount is None:
        amount = remaining
    if not Decimal("0") < amount <= remaining:
        raise TransitionNotAllowed(
            f"Refund between 0.01 and {remaining} {purchase.currency}: "
            f"{purchase.refunded_amount} of {purchase.total} is refunded already.",
            fields={"amount": f"At most {remaining}."},
        )
    if not lines:
        if amount == purchase.total:  # the whole purchase: every line
            lines = purchase_lines(purchase)
        else:
            lines = [
                {
                    "running_no": "",
                    "description": f"Refund on order {purchase.pk}",
                    "quantity": "",
                    "unit_price": "",
                    "amount": str(amount),
                }
            ]
    gross, net, vat = split_vat(amount, purchase.currency, purchase.client.vat_rate)
    full = purchase.refunded_amount + amount == purchase.total
    return RefundQuote(purchase, gross, net, vat, lines, full)


def refund(
    *,
    purchase: Purchase,
    actor: Actor,
    amount: Decimal | None = None,
    quantities: dict[int, int] | None = None,
    reason: str = RefundReason.REQUESTED,
    note: str = "",
    key: str | None = None,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Document:
    """Refund all (neither ``amount`` nor ``quantities``) or part of a paid
    purchase (docs/documents.md): the gateway gives the money back first
    (idempotency key from ``key``), then, in the same transaction, the
    purchase, the history, the notification with its e-mail and a numbered
    credit note. A full refund deactivates the subscription; a partial one
    changes nothing else. The same ``key`` refunds once (the first credit
    note is returned). A refund the gateway declines records nothing."""
    at = now_or(at, purchase)
    key = key or uuid.uuid4().hex
    with transaction.atomic():
        purchase = (
            Purchase.objects.select_for_update(of=("self",))
            .select_related("client")
            .get(pk=purchase.pk)
        )
        done = Document.objects.filter(client_id=purchase.client_id, refund_key=key).first()
        if done is not None:
            return done
        quote = quote_refund(purchase, amount=amount, quantities=quantities)
        reference = ""
        if purchase.gateway_reference:  # paid online; an invoice is paid back by transfer
            answer = get_gateway().refund(
                purchase.gateway_reference,
                quote.amount,
                purchase.currency,
                f"refund:{purchase.client_id}:{key}",
            )
            if not answer.approved:
                raise RefundDeclined(f"The payment service refused the refund: {answer.message}")
            reference = answer.reference
        invoice_for(purchase, at=purchase.paid_at)  # the invoice the credit note refers to
        purchase.refunded_amount += quote.amount
        purchase.status = (
            Purchase.Status.REFUNDED if quote.full else Purchase.Status.PARTIALLY_REFUNDED
        )
        purchase.save(update_fields=["refunded_amount", "status"])
        note_ = issue_credit_note(
            purchase,
            amount=quote.amount,
            lines=quote.lines,
            reason=reason,
            note=note,
            refund_key=key,
            gateway_reference=reference,
            at=at,
        )
        what = f"{'Full' if quote.full else 'Partial'} refund of {quote.amount} {purchase.currency}"
        _money_back(
            purchase,
            actor=actor,
            at=at,
            full=quote.full,
            summary=f"{what}, credit note {note_.display_number}",
            notification=N.REFUND if quote.full else N.PARTIAL_REFUND,
            generate_mail=generate_mail,
        )
    return note_


def chargeback(*, purchase: Purchase, actor: Actor, at: datetime | None = None) -> Purchase:
    """The card holder's bank took the money back: like a full refund."""
    at = now_or(at, purchase)
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        _refuse_unless_paid(purchase)
        purchase.status = Purchase.Status.CHARGEBACK
        purchase.refunded_amount, purchase.charged_back_at = purchase.total, at
        purchase.save(update_fields=["refunded_amount", "status", "charged_back_at"])
        _money_back(
            purchase,
            actor=actor,
            at=at,
            full=True,
            notification=N.CHARGEBACK,
            summary=f"Chargeback of {purchase.total} {purchase.currency}",
            generate_mail=False,
        )
    return purchase


def _refuse_unless_paid(purchase: Purchase) -> None:
    if purchase.status not in Purchase.REFUNDABLE:
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
    notification: NotificationType,
    generate_mail: bool,
) -> None:
    if purchase.subscription_id is None:
        outbox.notify_purchase(
            purchase,
            notification,
            purchase_payload(purchase, [], E.DEACTIVATE),
            generate_mail=generate_mail,
        )
        return
    locked = lock(purchase.subscription_id)
    if full and locked.sub.status not in (S.FINISHED, S.HANDLED_BY_CLIENT):
        _deactivate_all(locked, at=at)
    payload = purchase_payload(purchase, [(locked.sub, locked.items)], E.DEACTIVATE)
    record(
        locked,
        actor=actor,
        event_code=E.DEACTIVATE if full else E.PARTIAL_REFUND,
        at=at,
        notification=notification,
        payload=payload,
        purchase=purchase,
        generate_mail=generate_mail,
        summary=f"{summary} (purchase {purchase.pk}); subscription {locked.sub.status}.",
    )
