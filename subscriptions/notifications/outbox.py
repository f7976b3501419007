"""Writing notifications (docs/notifications.md): an outbox row per event and
the customer e-mail it implies, in the caller's transaction; webhooks and
e-mails go out after commit. Every notification and every customer e-mail
about a subscription or purchase is written here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from commerce.bulk import insert_rows
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
) -> OutboxNotification:
    """An unsaved outbox row."""
    return OutboxNotification(
        client_id=client_id,
        type=notification,
        payload=payload,
        subscription=subscription,
        purchase=purchase,
        generate_mail=generate_mail,
        created_at=at,
    )


def email_for(
    notification: str,
    *,
    subscription: Subscription | None,
    purchase: Purchase | None,
    at: datetime,
) -> CustomerEmail | None:
    """The unsaved customer e-mail a notification implies, if any (rendered
    when it is sent)."""
    kind = EMAIL_KIND.get(notification)
    if kind is None:
        return None
    return emails.build(
        kind, subscription=subscription, purchase=purchase, at=at, notification=notification
    )


def write(rows: Sequence[OutboxNotification], mails: Sequence[CustomerEmail]) -> None:
    """Insert outbox rows and e-mails (one statement each) in the caller's
    transaction, and have them delivered once it commits."""
    if rows:
        insert_rows(rows)
        tasks.deliver_after_commit()
    if mails:
        insert_rows(mails)
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
) -> OutboxNotification:
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
    return row


def notify_purchase(
    purchase: Purchase, notification: str, payload: dict[str, Any], *, generate_mail: bool = True
) -> OutboxNotification:
    """A purchase-level event (sign-up, declines, refunds)."""
    return notify(
        notification,
        client_id=purchase.client_id,
        payload=payload,
        at=purchase.paid_at or purchase.created_at,
        subscription=purchase.subscription,
        purchase=purchase,
        generate_mail=generate_mail,
    )
