"""Clients (tenants), their staff, products, purchases, the gateway ledger and
the notification outbox."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class SMVersion(models.TextChoices):
    V1 = "1.0", "Subscription Management 1.0"
    V2 = "2.0", "Subscription Management 2.0"


class DateFormat(models.TextChoices):
    """How the back office and the portal show a client's dates (Django
    ``date`` filter formats; the labels show 28 March 2026)."""

    ISO = "Y-m-d", "2026-03-28 (ISO 8601)"
    EUROPEAN = "d.m.Y", "28.03.2026"
    BRITISH = "d/m/Y", "28/03/2026"
    AMERICAN = "m/d/Y", "03/28/2026"
    LONG = "j M Y", "28 Mar 2026"


# The same formats for reading what staff type into date fields.
DATE_INPUT = {
    DateFormat.ISO: "%Y-%m-%d",
    DateFormat.EUROPEAN: "%d.%m.%Y",
    DateFormat.BRITISH: "%d/%m/%Y",
    DateFormat.AMERICAN: "%m/%d/%Y",
    DateFormat.LONG: "%d %b %Y",
}
# Typed dates a field hints at, per format.
DATE_HINT = {
    DateFormat.ISO: "YYYY-MM-DD",
    DateFormat.EUROPEAN: "DD.MM.YYYY",
    DateFormat.BRITISH: "DD/MM/YYYY",
    DateFormat.AMERICAN: "MM/DD/YYYY",
    DateFormat.LONG: "28 Mar 2026",
}


class Client(models.Model):
    SMVersion = SMVersion
    DateFormat = DateFormat

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    sm_version = models.CharField(max_length=3, choices=SMVersion.choices, default=SMVersion.V2)
    grace_period_days = models.PositiveIntegerField(default=7)
    hold_days = models.PositiveIntegerField(default=7)
    reminder_days = models.PositiveIntegerField(default=7)
    # Days of grace on which a declined renewal is retried (docs/renewals.md).
    dunning_retry_days = models.JSONField(default=list, blank=True)
    vat_rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Percent, e.g. 19.00",
    )
    # A sandbox client has its own test clock: real time + clock_offset, which
    # admins move forward (commerce/clock.py). Production clients never do.
    # Database defaults too, so rows inserted in SQL (bench/) get them.
    is_sandbox = models.BooleanField(default=False, db_default=False)
    clock_offset = models.DurationField(default=timedelta(0), db_default=timedelta(0))
    date_format = models.CharField(
        max_length=8,
        choices=DateFormat.choices,
        default=DateFormat.ISO,
        db_default=DateFormat.ISO,
        help_text="How dates are shown to this client's staff and customers.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(sm_version__in=SMVersion.values), name="client_sm_version_valid"
            ),
            models.CheckConstraint(
                condition=Q(is_sandbox=True) | Q(clock_offset=timedelta(0)),
                name="client_clock_only_in_sandbox",
            ),
            models.CheckConstraint(
                condition=Q(clock_offset__gte=timedelta(0)), name="client_clock_never_behind"
            ),
            models.CheckConstraint(
                condition=Q(vat_rate__gte=0) & Q(vat_rate__lte=100), name="client_vat_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.is_sandbox and self.clock_offset:
            raise ValidationError(
                {
                    "is_sandbox": "This client's test clock has moved; it stays a sandbox "
                    "(its time cannot go back to real time)."
                }
            )

    def now(self) -> datetime:
        """This client's time: real time, or the sandbox clock."""
        return timezone.now() + (self.clock_offset if self.is_sandbox else timedelta(0))

    @property
    def is_sm2(self) -> bool:
        return self.sm_version == self.SMVersion.V2

    def retry_days(self) -> list[int]:
        return sorted(int(d) for d in (self.dunning_retry_days or [1, 3, 5]))


class StaffMembership(models.Model):
    """A staff user belongs to exactly one client, with one role."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        SUPPORT = "support", "Support"
        ADMIN = "admin", "Admin"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="staff")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["viewer", "support", "admin"]), name="staff_role_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role} at {self.client})"


class ApiCredential(models.Model):
    """HTTP Basic credentials of a client system for the Subscription API
    (docs/api.md). The secret is shown once when created; only its SHA-256 is
    stored (it is 32 random bytes, so a fast hash is enough)."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="api_credentials")
    label = models.CharField(max_length=100)
    key_id = models.CharField(max_length=40, unique=True)
    secret_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.label} ({self.key_id})"

    @staticmethod
    def hash(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @classmethod
    def issue(
        cls, *, client: Client, label: str, created_by: Any = None
    ) -> tuple[ApiCredential, str]:
        """A new credential and its secret (returned once, never stored)."""
        secret = secrets.token_urlsafe(32)
        credential = cls.objects.create(
            client=client,
            label=label,
            key_id=f"ak_{secrets.token_hex(8)}",
            secret_sha256=cls.hash(secret),
            created_by=created_by,
        )
        return credential, secret

    def matches(self, secret: str) -> bool:
        return self.revoked_at is None and hmac.compare_digest(
            self.secret_sha256, self.hash(secret)
        )


class ApiIdempotentRequest(models.Model):
    """A POST sent with an ``Idempotency-Key`` and the answer it got, so the
    same key with the same body gets that answer again without repeating the
    change (docs/api.md). ``status_code`` 0: the first request is still running."""

    credential = models.ForeignKey(ApiCredential, on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=60)
    request_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveIntegerField(default=0)
    response = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["credential", "key"], name="idempotency_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"


class Product(models.Model):
    class RenewalMode(models.TextChoices):
        AUTOMATIC = "automatic", "Automatic"
        MANUAL = "manual", "Manual"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    is_subscription = models.BooleanField(default=True)
    initial_interval_months = models.PositiveIntegerField(default=1)
    initial_interval_days = models.PositiveIntegerField(default=0)
    interval_months = models.PositiveIntegerField(default=1)
    interval_days = models.PositiveIntegerField(default=0)
    # SM 1.0 only: renewal behaviour lives on the product.
    renewal_mode = models.CharField(
        max_length=10, choices=RenewalMode.choices, default=RenewalMode.AUTOMATIC
    )
    is_one_time_rebilling = models.BooleanField(
        default=False,
        help_text="SM 1.0 manual products: true = confirm every interval, "
        "false = confirm the first interval only",
    )
    # Number of billing events (paid intervals, sign-up included); null = unlimited.
    recurrence_count = models.PositiveIntegerField(null=True, blank=True)
    reminder_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the client's reminder days"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(
                condition=Q(is_subscription=False)
                | (Q(interval_months__gt=0) | Q(interval_days__gt=0))
                & (Q(initial_interval_months__gt=0) | Q(initial_interval_days__gt=0)),
                name="product_subscription_has_interval",
            ),
            models.CheckConstraint(
                condition=Q(recurrence_count__isnull=True) | Q(recurrence_count__gte=1),
                name="product_recurrence_count_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def interval_key(self) -> tuple[int, int, int, int]:
        """Products with the same key can share one subscription."""
        return (
            self.initial_interval_months,
            self.initial_interval_days,
            self.interval_months,
            self.interval_days,
        )


class Purchase(models.Model):
    """One order: a sign-up, a renewal or an immediate extra charge."""

    class Category(models.TextChoices):
        SIGNUP = "signup", "Sign-up"
        RENEWAL = "renewal", "Renewal"
        ALIGNMENT = "alignment", "Alignment"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # offline payment awaited, or charge in flight
        PAID = "paid", "Paid"
        DECLINED = "declined", "Declined"
        FAILED = "failed", "Failed"  # gateway error
        REFUNDED = "refunded", "Refunded"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        CHARGEBACK = "chargeback", "Chargeback"

    # A paid purchase with money left to give back (docs/documents.md).
    REFUNDABLE = (Status.PAID, Status.PARTIALLY_REFUNDED)
    # Paid (and perhaps given back since): it has an invoice.
    INVOICED = (*REFUNDABLE, Status.REFUNDED, Status.CHARGEBACK)

    # No index of its own: purchase_client_created_idx leads with it.
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="purchases", db_index=False
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="purchases"
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchases",
    )
    category = models.CharField(max_length=10, choices=Category.choices)
    status = models.CharField(max_length=20, choices=Status.choices)
    interval_no = models.PositiveIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    # When the card holder's bank took the money back (reports count it then).
    charged_back_at = models.DateTimeField(null=True, blank=True)
    payment_method = models.ForeignKey(
        "customers.PaymentMethod", on_delete=models.PROTECT, null=True, blank=True
    )
    charge_attempts = models.PositiveIntegerField(default=0)
    gateway_reference = models.CharField(max_length=100, blank=True)
    decline_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()  # indexed with client (purchase_client_created_idx)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Purchase search's default order (newest first) within one client.
            models.Index(fields=["client", "created_at"], name="purchase_client_created_idx"),
            # Pending purchases (in-flight renewals, unpaid invoices), found
            # per client before each sweep without reading the paid ones.
            models.Index(
                fields=["client"], condition=Q(status="pending"), name="purchase_pending_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "paid",
                        "declined",
                        "failed",
                        "refunded",
                        "partially_refunded",
                        "chargeback",
                    ]
                ),
                name="purchase_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(category__in=["signup", "renewal", "alignment"]),
                name="purchase_category_valid",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="purchase_total_not_negative"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("total")),
                name="purchase_refund_within_total",
            ),
            # Exactly once (docs/renewals.md): one renewal purchase per subscription and
            # interval. Retries of a declined charge reuse that row.
            models.UniqueConstraint(
                fields=["subscription", "interval_no"],
                condition=Q(category="renewal"),
                name="one_renewal_purchase_per_interval",
            ),
        ]

    def __str__(self) -> str:
        return f"Purchase {self.pk}"


class PurchaseItem(models.Model):
    # Not indexed on their own: (purchase, running_no) is unique, so indexed,
    # and products are deactivated, not deleted (a PROTECT check may scan).
    purchase = models.ForeignKey(
        Purchase, on_delete=models.CASCADE, related_name="items", db_index=False
    )
    running_no = models.PositiveIntegerField()
    product = models.ForeignKey(Product, on_delete=models.PROTECT, db_index=False)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    subscription_item = models.ForeignKey(
        "subscriptions.SubscriptionItem",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchase_items",
    )
    interval_no = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["running_no"]
        constraints = [
            models.UniqueConstraint(
                fields=["purchase", "running_no"], name="purchase_item_running_no_unique"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="purchase_item_qty_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.purchase_id}/{self.running_no}"


class GatewayCharge(models.Model):
    """The built-in test gateway's own ledger: one row per idempotency key, so a
    repeated call with the same key returns the first answer and charges once."""

    # Unique and indexed through Meta, which (unlike unique=True / db_index)
    # adds no second LIKE index on PostgreSQL: one index fewer per charge.
    idempotency_key = models.CharField(max_length=200)
    # The card's token (the gateway keeps numbers; this ledger never does).
    payment_token = models.CharField(max_length=64)
    # The stored card this charge was made on (the gateway's own token).
    payment_method_ref = models.CharField(max_length=40)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    outcome = models.CharField(max_length=10)
    reference = models.CharField(max_length=64)
    message = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="gateway_charge_key_unique")
        ]
        indexes = [models.Index(fields=["payment_method_ref"], name="gateway_charge_method_idx")]

    def __str__(self) -> str:
        return self.idempotency_key


class OutboxNotification(models.Model):
    """Transactional outbox: written in the same transaction as the change it
    reports; delivered by a worker after commit (docs/notifications.md)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="notifications")
    type = models.CharField(max_length=60)
    payload = models.JSONField()
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    purchase = models.ForeignKey(
        Purchase, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    generate_mail = models.BooleanField(default=True)
    created_at = models.DateTimeField()  # undelivered rows: outbox_undelivered_idx
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(delivered_at__isnull=True),
                name="outbox_undelivered_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookEndpoint(models.Model):
    """Where a client wants its notifications (docs/notifications.md): a URL, the types it
    wants (none = all), and the secret its deliveries are signed with (kept,
    since signing needs it; shown to the admin once, rotatable)."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    types = models.JSONField(default=list, blank=True, help_text="Empty: every type")
    is_active = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    @staticmethod
    def new_secret() -> str:
        """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
        return f"whsec_{base64.b64encode(secrets.token_bytes(24)).decode()}"

    def wants(self, notification_type: str) -> bool:
        return self.is_active and (not self.types or notification_type in self.types)


class WebhookDelivery(models.Model):
    """One notification to one endpoint: its attempts and the last answer."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    notification = models.ForeignKey(
        OutboxNotification, on_delete=models.CASCADE, related_name="deliveries"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "endpoint"], name="one_delivery_per_endpoint"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.notification_id} -> {self.endpoint_id} ({self.status})"


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class RefundReason(models.TextChoices):
    REQUESTED = "requested", "Requested by the customer"
    DUPLICATE = "duplicate", "Charged twice"
    NOT_DELIVERED = "not_delivered", "Service not delivered"
    UNSATISFIED = "unsatisfied", "Customer not satisfied"
    GOODWILL = "goodwill", "Goodwill"
    OTHER = "other", "Other"


class DocumentCounter(models.Model):
    """The last number given to a client's invoices or credit notes. A number
    is taken under this row's lock in the transaction that writes the
    document, so numbers have no gaps (docs/documents.md)."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=DocumentKind.choices)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "kind"], name="document_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.last}"


class Document(models.Model):
    """An invoice (one per paid purchase) or a credit note (one per refund):
    what was billed or given back, frozen when it was issued."""

    Kind = DocumentKind

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="documents")
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(max_length=12, choices=DocumentKind.choices)
    number = models.PositiveIntegerField()
    issued_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    net = models.DecimalField(max_digits=12, decimal_places=2)
    vat = models.DecimalField(max_digits=12, decimal_places=2)
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # [{"running_no", "description", "quantity", "unit_price", "amount"}], as strings.
    lines = models.JSONField(default=list)
    # Credit notes: why, and the key that makes a repeated request refund once.
    reason = models.CharField(max_length=20, choices=RefundReason.choices, blank=True)
    note = models.CharField(max_length=500, blank=True)
    refund_key = models.CharField(max_length=100, blank=True)
    gateway_reference = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "kind", "number"], name="document_number_unique"
            ),
            models.UniqueConstraint(
                fields=["purchase"],
                condition=Q(kind=DocumentKind.INVOICE),
                name="document_one_invoice_per_purchase",
            ),
            models.UniqueConstraint(
                fields=["client", "refund_key"],
                condition=~Q(refund_key=""),
                name="document_refund_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display_number}"

    @property
    def display_number(self) -> str:
        prefix = "INV" if self.kind == DocumentKind.INVOICE else "CN"
        return f"{prefix}-{self.number:06d}"

    @property
    def filename(self) -> str:
        return f"{self.display_number}.pdf"
