"""The Subscription Billing tab's actions (docs/back-office.md) and the
portal's (docs/portal.md):
when each is offered, what the confirmation says, and which lifecycle service
it calls.

``offered`` only decides whether a button is shown; the service is the
authority and its refusal reason is what the user sees if the state changed
in the meantime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from commerce.gateway import PaymentKind
from commerce.models import Purchase, SMVersion

from . import services
from .errors import InvalidInput
from .models import ItemStatus, RenewalType, Subscription, SubscriptionItem, SubscriptionStatus

S, IS = SubscriptionStatus, ItemStatus
OURS = (S.ACTIVE, S.GRACE, S.HOLD, S.NEW, S.DEACTIVATED)


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    question: str  # shown in the confirmation step
    effect: str
    per_item: bool = False
    danger: bool = False


ACTIONS = {
    a.name: a
    for a in [
        Action(
            "await-reinstate",
            "Await Reinstate",
            "Make {sub} wait for the customer's confirmation?",
            "Active items become Awaiting reinstate and the subscription Deactivated; it renews "
            "only after the customer (or you) reinstates it.",
            danger=True,
        ),
        Action(
            "reinstate",
            "Reinstate",
            "Reinstate {sub}?",
            "All deactivated or awaiting items become Active again. If the billing date has "
            "passed, the customer is charged now and the billing dates restart from today.",
        ),
        Action(
            "switch-manual",
            "Switch to Manual Renewal",
            "Switch {sub} to manual renewal?",
            "The subscription stays Active but is not charged automatically at the next billing "
            "date; the customer renews it themselves.",
        ),
        Action(
            "switch-automatic",
            "Switch to Automatic Renewal",
            "Switch {sub} to automatic renewal?",
            "The customer's payment method is charged automatically at each billing date.",
        ),
        Action(
            "deactivate-item",
            "Deactivate",
            "Deactivate item {item} of {sub}?",
            "The item is not billed again; it can be reinstated later. If no Active item is "
            "left, the subscription becomes Deactivated.",
            per_item=True,
            danger=True,
        ),
        Action(
            "reinstate-item",
            "Reinstate",
            "Reinstate item {item} of {sub}?",
            "The item is billed again from the next billing date.",
            per_item=True,
        ),
        Action(
            "change-date",
            "Change next billing date",
            "Change the next billing date of {sub}?",
            "Later billing dates follow from the new date.",
        ),
        Action(
            "renew-now",
            "Renew now",
            "Renew {sub} now?",
            "A card is charged for the next interval now; an invoice subscription gets its "
            "renewal invoice (mark it paid when the money arrives).",
        ),
        Action(
            "mark-paid",
            "Mark as paid",
            "Record the offline payment for {sub}?",
            "The invoice is marked paid and the subscription starts or continues its interval.",
        ),
    ]
}


def pending_invoice(sub: Subscription) -> Purchase | None:
    return (
        Purchase.objects.filter(
            subscription=sub,
            status=Purchase.Status.PENDING,
            payment_method__kind=PaymentKind.INVOICE,
        )
        .order_by("id")
        .first()
        or Purchase.objects.filter(
            items__subscription_item__subscription=sub,
            status=Purchase.Status.PENDING,
            payment_method__kind=PaymentKind.INVOICE,
        )
        .order_by("id")
        .first()
    )


def offered(
    sub: Subscription, items: list[SubscriptionItem], invoice: Purchase | None
) -> list[str]:
    """Subscription-level actions to show for the current state."""
    if sub.status not in OURS:
        return []
    statuses = {i.status for i in items}
    names = []
    if sub.sm_version == SMVersion.V1:
        if sub.status == S.ACTIVE and IS.ACTIVE in statuses:
            names.append("await-reinstate")
        if statuses & {IS.AWAITING_REINSTATE, IS.DEACTIVATED}:
            names.append("reinstate")
    else:
        names.append(
            "switch-manual" if sub.renewal_type == RenewalType.AUTOMATIC else "switch-automatic"
        )
    if sub.status != S.NEW:
        names.append("change-date")
    if (
        sub.status in (S.ACTIVE, S.GRACE, S.HOLD)
        and IS.ACTIVE in statuses
        and (sub.payment_method.is_online or invoice is None)
    ):
        names.append("renew-now")
    if invoice is not None:
        names.append("mark-paid")
    return names


def offered_for_item(sub: Subscription, item: SubscriptionItem) -> list[str]:
    if sub.status not in OURS:
        return []
    if item.status in (IS.ACTIVE, IS.AWAITING_REINSTATE):
        return ["deactivate-item"]
    if item.status == IS.DEACTIVATED:
        return ["reinstate-item"]
    return []


def perform(
    name: str,
    *,
    sub: Subscription,
    actor: services.Actor,
    running_no: int | None,
    new_date: datetime | None,
) -> str:
    """Run the action through its service; returns the success message."""
    runners: dict[str, Callable[[], Any]] = {
        "await-reinstate": lambda: services.await_reinstate(subscription=sub, actor=actor),
        "reinstate": lambda: services.reinstate_items(
            subscription=sub,
            actor=actor,
            running_nos=[
                i.running_no
                for i in sub.items.all()
                if i.status in (IS.DEACTIVATED, IS.AWAITING_REINSTATE)
            ],
        ),
        "switch-manual": lambda: services.switch_renewal_type(
            subscription=sub, renewal_type=RenewalType.MANUAL, actor=actor
        ),
        "switch-automatic": lambda: services.switch_renewal_type(
            subscription=sub, renewal_type=RenewalType.AUTOMATIC, actor=actor
        ),
        "deactivate-item": lambda: services.deactivate_items(
            subscription=sub, running_nos=[_item_no(running_no)], actor=actor
        ),
        "reinstate-item": lambda: services.reinstate_items(
            subscription=sub, running_nos=[_item_no(running_no)], actor=actor
        ),
        "change-date": lambda: services.change_next_billing_date(
            subscription=sub, next_billing_date=_date(new_date), actor=actor
        ),
        "renew-now": lambda: services.renew_now(subscription=sub, actor=actor),
        "mark-paid": lambda: _mark_paid(sub, actor),
    }
    result = runners[name]()
    if (
        isinstance(result, services.ChargeOutcome)
        and result.status != services.TransactionStatus.SUCCESS
    ):
        raise InvalidInput(f"The charge did not go through ({result.status}): {result.message}")
    sub.refresh_from_db()
    return f"{ACTIONS[name].label}: done. {_what_changed(name, sub, running_no)}"


def _what_changed(name: str, sub: Subscription, running_no: int | None) -> str:
    """The message names what the action changed, not only the status."""
    status = sub.get_status_display()
    if name in ("switch-manual", "switch-automatic"):
        how = "manually" if sub.renewal_type == RenewalType.MANUAL else "automatically"
        return f"{sub.display_id} now renews {how} (status {status})."
    if name in ("deactivate-item", "reinstate-item") and running_no is not None:
        item = sub.items.filter(running_no=running_no).first()
        if item is not None:
            now = item.get_status_display()
            return f"Item {running_no} is now {now}; {sub.display_id} is {status}."
    if name in ("change-date", "renew-now", "mark-paid"):
        return f"{sub.display_id} is {status}; next billing date {sub.next_billing_date:%Y-%m-%d}."
    return f"{sub.display_id} is now {status}."


def _item_no(running_no: int | None) -> int:
    if running_no is None:
        raise InvalidInput("Choose an item.")
    return running_no


def _date(value: datetime | None) -> datetime:
    if value is None:
        raise InvalidInput("Enter the new billing date.")
    return value


def _mark_paid(sub: Subscription, actor: services.Actor) -> Purchase:
    invoice = pending_invoice(sub)
    if invoice is None:
        raise InvalidInput("There is no unpaid invoice for this subscription.")
    return services.mark_purchase_paid(purchase=invoice, actor=actor)


# --- the customer portal (docs/portal.md) --------------------------------------------------


def offered_to_customer(
    sub: Subscription, items: list[SubscriptionItem]
) -> list[tuple[str, str, int | None]]:
    """What a customer may do with their subscription in the portal now:
    (action, label, item running number or None)."""
    if sub.status in (S.FINISHED, S.HANDLED_BY_CLIENT, S.NEW):
        return []
    out: list[tuple[str, str, int | None]] = []
    if sub.sm_version == SMVersion.V2:
        if any(sub.customer_can_stop(i) for i in items):
            out.append(("renewal-off", "Turn off automatic renewal", None))
        else:
            out.append(("renewal-on", "Turn on automatic renewal", None))
    else:
        for item in items:
            if sub.customer_can_stop(item):
                out.append(("cancel-item", f"Cancel {item.product.name}", item.running_no))
            elif item.status in (IS.DEACTIVATED, IS.AWAITING_REINSTATE):
                out.append(("reinstate-item", f"Reinstate {item.product.name}", item.running_no))
    online = sub.payment_method.is_online
    manual = sub.renewal_type == RenewalType.MANUAL
    renewable = IS.ACTIVE in {i.status for i in items} and (
        sub.status in (S.GRACE, S.HOLD) or (manual and sub.status == S.ACTIVE)
    )
    if renewable and online:
        out.append(("renew-now", "Renew now", None))
    if renewable and pending_invoice(sub) is None:
        out.append(("renew-invoice", "Pay by invoice" if online else "Get the invoice", None))
    return out


def perform_for_customer(
    action: str, sub: Subscription, item_no: int | None, actor: services.Actor
) -> None:
    """Run a portal action through its service."""
    if action in ("renewal-off", "renewal-on"):
        kind = RenewalType.MANUAL if action == "renewal-off" else RenewalType.AUTOMATIC
        services.switch_renewal_type(subscription=sub, renewal_type=kind, actor=actor)
    elif action == "cancel-item":
        services.deactivate_items(subscription=sub, running_nos=[item_no or 0], actor=actor)
    elif action == "reinstate-item":
        services.reinstate_items(subscription=sub, running_nos=[item_no or 0], actor=actor)
    elif action == "renew-invoice":
        services.issue_renewal_invoice(subscription=sub, actor=actor)
    else:
        outcome = services.renew_now(subscription=sub, actor=actor)
        if isinstance(outcome, Purchase):
            return  # an invoice subscription: its renewal invoice is on its way
        if outcome.status != services.TransactionStatus.SUCCESS:
            raise InvalidInput(
                f"your card was not charged ({outcome.message or outcome.status}). "
                "Please update your card and try again."
            )
