"""Customers (unique per client by e-mail) and their payment methods."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from commerce.gateway import PaymentKind


class Customer(models.Model):
    client = models.ForeignKey(
        "commerce.Client", on_delete=models.CASCADE, related_name="customers"
    )
    email = models.EmailField()
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    company = models.CharField(max_length=200, blank=True)
    reference_id = models.CharField(max_length=100, blank=True)
    # When the customer first bought (a sandbox client's test clock time).
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # The same person buying from two clients is two customers.
            models.UniqueConstraint(
                Lower("email"), "client", name="customer_email_unique_per_client"
            ),
        ]
        indexes = [
            models.Index(fields=["client", "reference_id"]),
            # Stored lower-case by the services; exact e-mail search uses this.
            # (Prefix search on e-mail and names has PostgreSQL pattern indexes,
            # migration 0004.)
            models.Index(fields=["email"], name="customer_email_idx"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class PaymentMethod(models.Model):
    """A card, kept as the gateway's token with its brand, last four digits
    and expiry — never its number (docs/deploy.md) — or an offline invoice."""

    Kind = PaymentKind

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="payment_methods")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    token = models.CharField(max_length=64, blank=True, help_text="The gateway's card token")
    brand = models.CharField(max_length=20, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    expiry_month = models.PositiveSmallIntegerField(null=True, blank=True)
    expiry_year = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=PaymentKind.INVOICE)
                | (
                    Q(kind=PaymentKind.CARD)
                    & ~Q(token="")
                    & Q(expiry_month__gte=1, expiry_month__lte=12)
                    & Q(expiry_year__isnull=False)
                ),
                name="payment_method_card_complete",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.INVOICE:
            return "Invoice"
        brand = self.brand or "Card"
        return f"{brand} •••• {self.last4} ({self.expiry_month:02d}/{self.expiry_year})"

    @property
    def is_online(self) -> bool:
        return self.kind == self.Kind.CARD


class CustomerEmail(models.Model):
    """An e-mail to a customer: written in the same transaction as the change
    it tells about, sent by a worker after commit, kept as a log that the
    Purchase viewer's E-mails tab lists."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt", "Receipt"
        REMINDER = "reminder", "Renewal reminder"
        # Manual renewal (SM 2.0 Manual, SM 1.0 AwaitingReinstate): renew now.
        INVITATION = "invitation", "Renewal invitation"
        INVOICE = "invoice", "Invoice"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        ON_HOLD = "on_hold", "Subscription on hold"
        DEACTIVATED = "deactivated", "Subscription deactivated"
        CHANGED = "changed", "Subscription changed"
        PORTAL_LINK = "portal_link", "Account link"
        REFUND = "refund", "Refund"

    # Listed per purchase, subscription or customer; the client column scopes
    # but needs no index of its own (one index fewer per e-mail written).
    client = models.ForeignKey("commerce.Client", on_delete=models.CASCADE, db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="emails")
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="emails",
    )
    purchase = models.ForeignKey(
        "commerce.Purchase", on_delete=models.CASCADE, null=True, blank=True, related_name="emails"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    notification = models.CharField(max_length=60, blank=True)
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body_text = models.TextField(blank=True)  # rendered when sent, if empty
    body_html = models.TextField(blank=True)
    created_at = models.DateTimeField()  # unsent rows: email_unsent_idx
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(sent_at__isnull=True),
                name="email_unsent_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to}"
