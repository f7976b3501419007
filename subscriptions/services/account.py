"""A customer's own details: the payment card of their subscriptions and their
contact details (docs/portal.md). Each writes a history entry on every subscription
it touches, with the acting customer, staff user or API credential."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from customers.models import Customer, PaymentMethod

from ..errors import InvalidInput
from ..models import EventCode, SubscriptionStatus
from .common import Actor, history_entry, lock, now_or, record, write_history
from .signup import CardInput, card_errors, payment_method

S = SubscriptionStatus
CONTACT_FIELDS = {"first_name": 100, "last_name": 100, "company": 200}


def update_card(
    *, customer: Customer, card: CardInput, actor: Actor, at: datetime | None = None
) -> PaymentMethod:
    """Store the new card and bill every subscription of the customer that can
    still be billed with it from now on."""
    at = now_or(at, customer)
    errors = card_errors(card, at)
    if errors:
        raise InvalidInput(" ".join(errors.values()), fields=errors)
    with transaction.atomic():
        method = payment_method(customer, card)
        subs = customer.subscriptions.exclude(status__in=[S.FINISHED, S.HANDLED_BY_CLIENT])
        for pk in subs.order_by("pk").values_list("pk", flat=True):
            locked = lock(pk)
            old = locked.sub.payment_method
            locked.sub.payment_method = method
            record(
                locked,
                actor=actor,
                event_code=EventCode.PAYMENT_METHOD,
                at=at,
                summary=f"Payment method changed from {old} to {method}.",
            )
    return method


def update_contact(
    *, customer: Customer, changes: dict[str, str], actor: Actor, at: datetime | None = None
) -> Customer:
    """Change the customer's name or company (the e-mail address identifies
    them for the client and stays)."""
    at = now_or(at, customer)
    errors = {
        name: f"At most {limit} characters."
        for name, limit in CONTACT_FIELDS.items()
        if len(changes.get(name, "")) > limit
    }
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        errors.update({name: "Cannot be changed here." for name in unknown})
    if errors:
        raise InvalidInput(" ".join(errors.values()), fields=errors)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        before = {k: getattr(customer, k) for k in changes}
        after = {k: v.strip() for k, v in changes.items()}
        changed = {k for k in after if after[k] != before[k]}
        if not changed:
            return customer
        for name in changed:
            setattr(customer, name, after[name])
        customer.save(update_fields=sorted(changed))
        summary = "Contact details changed: " + ", ".join(
            f"{k.replace('_', ' ')} {before[k] or '–'} -> {after[k] or '–'}"
            for k in sorted(changed)
        )
        write_history(
            [
                history_entry(
                    client_id=customer.client_id,
                    subscription_id=pk,
                    actor=actor,
                    event_code=EventCode.CONTACT,
                    summary=summary + ".",
                    at=at,
                    before={k: before[k] for k in changed},
                    after={k: after[k] for k in changed},
                )
                for pk in customer.subscriptions.values_list("pk", flat=True)
            ]
        )
    return customer
