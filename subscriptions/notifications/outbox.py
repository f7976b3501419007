"""Writing notifications (docs/notifications.md): an outbox row per event and
the customer e-mail it implies, in the caller's transaction; webhooks and
e-mails go out after commit. Every notification and every customer e-mail
about a subscription or purchase is written here.

Rows are built as plain column dicts (``Row``) and inserted a batch at a
time, so a renewal batch builds no model instance for them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from commerce.bulk import Row, insert_dicts
from commerce.models import OutboxNotification, Purchase
from customers import emails
from customers import tasks as email_tasks
from customers.models import CustomerEmail

from ..models import Subscription
from . import tasks
from .types import EMAIL_KIND


def outbox_row(
    notification: str,
    *,
    client_id: int,
    payload: dict[str, Any],
    at: datetime,
    subscription: Subscription | None = None,
    purchase: Purchase | None = None,
    generate_mail: bool = True,
) -> Row:
    """An outbox row to insert."""
    return {
        "id": uuid.uuid4(),
        "client_id": client_id,
        "type": notification,
        "payload": payload,
        "subscription_id": subscription.pk if subscription else None,
        "purchase_id": purchase.pk if purchase else None,
        "generate_mail": generate_mail,
        "created_at": at,
        "delivered_at": None,
    }


def email_for(
    notification: str,
    *,
    subscription: Subscription | None,
    purchase: Purchase | None,
    at: datetime,
    kind: str | None = None,
) -> Row | None:
    """The customer e-mail a notification implies, if any (rendered when
    sent); ``kind`` when the event says more than its notification type (an
    invoice or a renewal invitation rather than "payment failed")."""
    kind = kind or EMAIL_KIND.get(notification)
    if kind is None:
        return None
    return emails.row(
        kind, subscription=subscription, purchase=purchase, at=at, notification=notification
    )


def write(rows: Sequence[Row], mails: Sequence[Row]) -> None:
    """Insert outbox rows and e-mails (one statement each) in the caller's
    transaction, and have them delivered once it commits."""
    if rows:
        insert_dicts(OutboxNotification, rows)
        tasks.deliver_after_commit()
    if mails:
        insert_dicts(CustomerEmail, mails)
        email_tasks.send_after_commit()


def notify(
    notification: str,
    *,
    client_id: int,
    payload: dict[str, Any],
    at: datetime,
    subscription: Subscription | None = None,
    purchase: Purchase | None = None,
    generate_mail: bool = True,
) -> None:
    """Write one notification and, when ``generate_mail``, its e-mail."""
    row = outbox_row(
        notification,
        client_id=client_id,
        payload=payload,
        at=at,
        subscription=subscription,
        purchase=purchase,
        generate_mail=generate_mail,
    )
    mail = (
        email_for(notification, subscription=subscription, purchase=purchase, at=at)
        if generate_mail
        else None
    )
    write([row], [mail] if mail else [])


def notify_purchase(
    purchase: Purchase, notification: str, payload: dict[str, Any], *, generate_mail: bool = True
) -> None:
    """A purchase-level event (sign-up, declines, refunds)."""
    notify(
        notification,
        client_id=purchase.client_id,
        payload=payload,
        at=purchase.paid_at or purchase.created_at,
        subscription=purchase.subscription,
        purchase=purchase,
        generate_mail=generate_mail,
    )
