"""Customer e-mails (docs/notifications.md): written as ``CustomerEmail`` rows in
the transaction that causes them, rendered and sent by a Celery worker after
commit (``customers.tasks``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from commerce import documents
from commerce.bulk import Row
from commerce.models import Client, Document, DocumentKind, Purchase

from .models import Customer, CustomerEmail
from .portal import link_for


class Subscription(Protocol):
    """What an e-mail needs of a subscription (that app builds on this one)."""

    pk: int
    customer: Customer
    client: Client
    next_billing_date: datetime


K = CustomerEmail.Kind

SUBJECTS: dict[str, str] = {
    K.RECEIPT: "Your receipt from {client}",
    K.INVOICE: "Your invoice from {client}",
    K.REMINDER: "Your {client} subscription renews on {date}",
    K.INVITATION: "Your {client} subscription is up for renewal on {date}",
    K.PAYMENT_FAILED: "We could not charge your payment method",
    K.ON_HOLD: "Your {client} subscription is on hold",
    K.DEACTIVATED: "Your {client} subscription has ended",
    K.CHANGED: "Your {client} subscription was updated",
    K.PORTAL_LINK: "Your link to manage your {client} subscriptions",
    K.REFUND: "Your refund from {client}",
}


def row(
    kind: str,
    *,
    subscription: Subscription | None,
    purchase: Purchase | None,
    at: datetime,
    notification: str = "",
) -> Row:
    """A queued e-mail as a ``CustomerEmail`` row to insert. The body is
    rendered when it is sent, so a renewal batch renders no templates."""
    owner = subscription or purchase
    assert owner is not None
    customer, client = owner.customer, owner.client
    date = subscription.next_billing_date.strftime("%Y-%m-%d") if subscription else ""
    return {
        "client_id": client.pk,
        "customer_id": customer.pk,
        "subscription_id": subscription.pk if subscription else None,
        "purchase_id": purchase.pk if purchase else None,
        "kind": kind,
        "notification": notification,
        "to": customer.email,
        "subject": SUBJECTS[kind].format(client=client.name, date=date),
        "body_text": "",
        "body_html": "",
        "created_at": at,
        "sent_at": None,
        "error": "",
    }


# What the stored copy of an e-mail has where the customer's portal link goes:
# the link opens the customer's account, so it is put in only as the message
# is sent and never kept (staff read the stored copy on the E-mails tab).
LINK_MASK = "[personal portal link, sent to the customer only]"


def with_link(body: str, email: CustomerEmail) -> str:
    """The body as sent: a fresh signed portal link in place of the mask."""
    if LINK_MASK not in body:
        return body
    return body.replace(LINK_MASK, link_for(email.customer, email.client))


def document_of(email: CustomerEmail) -> Document | None:
    """The document an e-mail carries (docs/documents.md): a receipt its
    purchase's invoice (issued now if need be), a refund e-mail the credit
    note issued with it."""
    purchase = email.purchase
    if purchase is None:
        return None
    if email.kind == K.RECEIPT and purchase.status in Purchase.INVOICED:
        return documents.invoice_for(purchase)
    if email.kind == K.REFUND:
        notes = purchase.documents.filter(kind=DocumentKind.CREDIT_NOTE)
        return (
            notes.filter(issued_at=email.created_at).order_by("-id").first()
            or notes.order_by("-id").first()
        )
    return None


def render(email: CustomerEmail, document: Document | None = None) -> None:
    """Fill in the text and HTML bodies from the records as they are now
    (with ``LINK_MASK`` where the portal link goes)."""
    context: dict[str, Any] = {
        "kind": email.kind,
        "client": email.client,
        "customer": email.customer,
        "subscription": email.subscription,
        "purchase": email.purchase,
        "notification": email.notification,
        # Every e-mail carries a fresh signed link into the portal (docs/portal.md),
        # put in when it is sent (``with_link``).
        "portal_url": LINK_MASK,
        "link_days": max(settings.PORTAL_LINK_MAX_AGE // 86400, 1),
        "document": document,
    }
    email.body_text = render_to_string("emails/customer.txt", context)
    email.body_html = render_to_string("emails/customer.html", context)


def portal_link_email(customer: Customer, *, at: datetime) -> CustomerEmail:
    """The e-mail a customer asks for on the portal's sign-in page (unsaved,
    rendered now; the link goes in as it is sent)."""
    email = CustomerEmail(
        client_id=customer.client_id,
        customer=customer,
        kind=K.PORTAL_LINK,
        to=customer.email,
        created_at=at,
        subject=SUBJECTS[K.PORTAL_LINK].format(client=customer.client.name),
    )
    render(email)
    return email


def message_id(email: CustomerEmail) -> str:
    """The e-mail's Message-ID: the same every time it is sent, so a resend
    after a crash can be recognised as the same message."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return f"<customer-email-{email.pk}@{domain}>"


def send_pending(limit: int = 200) -> int:
    """Send unsent e-mails one at a time, rendering those queued without a
    body and attaching their document (docs/documents.md): each is claimed
    with a row lock (rows another worker is sending are skipped), sent,
    marked sent and committed before the next. A worker
    that dies mid-way leaves at most the message it was sending unmarked;
    the next worker sends it again, with the same Message-ID."""
    ids = list(
        CustomerEmail.objects.filter(sent_at__isnull=True)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    connection = get_connection()
    with connection:
        for pk in ids:
            # The document (issued if need be) and its PDF are made before the
            # claim: the slow part holds no lock (SQLite locks the whole file).
            about = (
                CustomerEmail.objects.filter(pk=pk, sent_at__isnull=True)
                .select_related("client", "customer", "subscription", "purchase")
                .first()
            )
            if about is None:
                continue
            document = document_of(about)
            pdf = documents.render_pdf(document) if document is not None else None
            with transaction.atomic():
                email = (
                    CustomerEmail.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(pk=pk, sent_at__isnull=True)
                    .select_related("client", "customer", "subscription", "purchase")
                    .first()
                )
                if email is None:
                    continue  # another worker has it, or sent it meanwhile
                if not email.body_text:
                    render(email, document)
                message = EmailMultiAlternatives(
                    email.subject,
                    with_link(email.body_text, email),
                    settings.DEFAULT_FROM_EMAIL,
                    [email.to],
                    headers={"Message-ID": message_id(email)},
                )
                message.attach_alternative(with_link(email.body_html, email), "text/html")
                if document is not None and pdf is not None:
                    message.attach(document.filename, pdf, "application/pdf")
                connection.send_messages([message])
                email.sent_at = timezone.now()
                email.save(update_fields=["body_text", "body_html", "sent_at"])
            sent += 1
    return sent
