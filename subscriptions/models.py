"""Subscriptions, their items and their append-only history (docs/lifecycle.md).

The state machines live here: explicit transition tables and one guarded
``set_status`` per model that refuses anything else with a domain error.
Workflows that touch several rows live in ``subscriptions.services``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from commerce.models import SMVersion

from .dates import Interval, interval_start
from .errors import ConcurrentChange, TransitionNotAllowed


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "Active"
    DEACTIVATED = "Deactivated"
    FINISHED = "Finished"
    GRACE = "Grace"
    HOLD = "Hold"
    NEW = "New"
    HANDLED_BY_CLIENT = "HandledByClient", "Handled by client"


class ItemStatus(models.TextChoices):
    ACTIVE = "Active"
    DEACTIVATED = "Deactivated"
    FINISHED = "Finished"
    REMOVED = "Removed"
    AWAITING_REINSTATE = "AwaitingReinstate", "Awaiting reinstate"
    HANDLED_BY_CLIENT = "HandledByClient", "Handled by client"


class RenewalType(models.TextChoices):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class EventCode(models.TextChoices):
    """What a history entry records (docs/lifecycle.md); the codes are the
    original platform's SubscriptionEventtypeId values."""

    NEW = "new", "Subscription started"
    RENEWED = "renewed", "Renewed"
    RENEWAL_REQUESTED = "renewalReq", "Renewal requested"
    GRACE = "grace", "Payment overdue (Grace)"
    HOLD = "hold", "On hold"
    DEACTIVATE = "deactivate", "Deactivated"
    REINSTATE = "reinstate", "Reinstated"
    FINISHED = "finished", "Finished"
    RENEWAL_TYPE = "renTypeUpd", "Renewal type changed"
    NEXT_BILLING_DATE = "updNextBD", "Next billing date changed"
    REMOVE = "remove", "Item removed"
    HANDOVER = "handover", "Handed over to the client"
    NOTE = "note", "Note"
    PAYMENT_METHOD = "updPayment", "Payment method changed"
    CONTACT = "contact", "Contact details changed"
    PARTIAL_REFUND = "partialRefund", "Partial refund"
    ADD = "add", "Item added"
    UPDATE = "update", "Item changed"
    UPGRADE = "upgrade", "Item upgraded"
    DOWNGRADE = "downgrade", "Item downgraded"
    INCREASE_QUANTITY = "incqty", "Quantity increased"
    MIGRATE_SM2 = "migrateSM2", "Moved to Subscription Management 2.0"
    CHARGE_REFUNDED = "chargeRefunded", "Charge refunded (could not be applied)"


S, IS = SubscriptionStatus, ItemStatus
# SM 1.0 items that come up for renewal (automatically, or to be reinstated).
RENEWING_ITEMS = (IS.ACTIVE, IS.AWAITING_REINSTATE)

SUBSCRIPTION_TRANSITIONS: dict[str, set[str]] = {
    S.NEW: {S.ACTIVE, S.DEACTIVATED, S.FINISHED, S.HANDLED_BY_CLIENT},
    S.ACTIVE: {S.DEACTIVATED, S.FINISHED, S.GRACE, S.HOLD, S.HANDLED_BY_CLIENT},
    S.GRACE: {S.ACTIVE, S.HOLD, S.DEACTIVATED, S.FINISHED, S.HANDLED_BY_CLIENT},
    S.HOLD: {S.ACTIVE, S.DEACTIVATED, S.FINISHED, S.HANDLED_BY_CLIENT},
    S.DEACTIVATED: {S.ACTIVE, S.FINISHED, S.HANDLED_BY_CLIENT},
    S.FINISHED: set(),
    S.HANDLED_BY_CLIENT: set(),
}

ITEM_TRANSITIONS: dict[str, set[str]] = {
    IS.ACTIVE: {
        IS.DEACTIVATED,
        IS.FINISHED,
        IS.REMOVED,
        IS.AWAITING_REINSTATE,
        IS.HANDLED_BY_CLIENT,
    },
    IS.AWAITING_REINSTATE: {
        IS.ACTIVE,
        IS.DEACTIVATED,
        IS.FINISHED,
        IS.REMOVED,
        IS.HANDLED_BY_CLIENT,
    },
    IS.DEACTIVATED: {IS.ACTIVE, IS.FINISHED, IS.REMOVED, IS.HANDLED_BY_CLIENT},
    IS.FINISHED: {IS.REMOVED},
    IS.REMOVED: set(),
    IS.HANDLED_BY_CLIENT: set(),
}


class SubscriptionQuerySet(models.QuerySet["Subscription"]):
    def scheduled(self) -> SubscriptionQuerySet:
        """Subscriptions the schedule may touch (never HandledByClient)."""
        return self.exclude(status=S.HANDLED_BY_CLIENT)


class Subscription(models.Model):
    # No index of its own: (client, id) and (client, status) lead with it.
    client = models.ForeignKey(
        "commerce.Client", on_delete=models.CASCADE, related_name="subscriptions", db_index=False
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="subscriptions"
    )
    payment_method = models.ForeignKey(
        "customers.PaymentMethod", on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = models.CharField(max_length=20, choices=SubscriptionStatus.choices)
    # Copied from the client when the row is written so that a constraint can
    # hold "SM 1.0 -> no renewal type, SM 2.0 -> always one"; the SM migration
    # changes both in one statement.
    sm_version = models.CharField(max_length=3, choices=SMVersion.choices)
    renewal_type = models.CharField(  # noqa: DJ001 - docs/lifecycle.md: null means SM 1.0
        max_length=10, choices=RenewalType.choices, null=True, blank=True
    )
    currency = models.CharField(max_length=3)
    start_interval_months = models.PositiveIntegerField()
    start_interval_days = models.PositiveIntegerField()
    interval_months = models.PositiveIntegerField()
    interval_days = models.PositiveIntegerField()
    start_date = models.DateTimeField()
    end_date = models.DateTimeField(null=True, blank=True)
    anchor_date = models.DateTimeField()
    anchor_interval_no = models.PositiveIntegerField(default=1)
    next_billing_date = models.DateTimeField()
    last_interval_no = models.PositiveIntegerField(default=0)
    # When the current status began: grace and hold expiry count from here.
    status_changed_at = models.DateTimeField()
    # The interval whose renewal reminder went out (so a reminder goes once).
    reminded_interval_no = models.PositiveIntegerField(default=0)
    # Optimistic lock: every change bumps it with a conditional UPDATE.
    row_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The sweep's due work per client (a range scan, whatever the
            # other clients have due); its (client, status) prefix serves
            # the status filters of lists and dunning.
            models.Index(
                fields=["client", "status", "next_billing_date"], name="sub_client_status_nbd_idx"
            ),
            # The list's default order (newest first) within one client.
            models.Index(fields=["client", "id"], name="sub_client_id_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=SubscriptionStatus.values), name="subscription_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(sm_version=SMVersion.V1, renewal_type__isnull=True)
                | Q(sm_version=SMVersion.V2, renewal_type__in=RenewalType.values),
                name="renewal_type_matches_sm_version",
            ),
            models.CheckConstraint(
                condition=(Q(interval_months__gt=0) | Q(interval_days__gt=0))
                & (Q(start_interval_months__gt=0) | Q(start_interval_days__gt=0)),
                name="subscription_interval_positive",
            ),
            models.CheckConstraint(
                condition=Q(anchor_interval_no__gte=1), name="subscription_anchor_interval_positive"
            ),
            models.CheckConstraint(
                condition=~Q(status="New") | Q(last_interval_no=0),
                name="new_subscription_has_no_paid_interval",
            ),
        ]

    def __str__(self) -> str:
        return self.display_id

    @property
    def display_id(self) -> str:
        return f"S{self.pk}"

    @property
    def initial_interval(self) -> Interval:
        return Interval(self.start_interval_months, self.start_interval_days)

    @property
    def interval(self) -> Interval:
        return Interval(self.interval_months, self.interval_days)

    def billing_date_of(self, interval_no: int) -> datetime:
        """Start (billing date) of ``interval_no``, from the anchor."""
        return interval_start(
            anchor=self.anchor_date,
            anchor_interval_no=self.anchor_interval_no,
            interval_no=interval_no,
            initial=self.initial_interval,
            recurring=self.interval,
        )

    def rebase(self, at: datetime, *, interval_no: int) -> None:
        """Make ``at`` the start of ``interval_no`` and recompute the next date."""
        self.anchor_date = at
        self.anchor_interval_no = max(interval_no, 1)
        self.next_billing_date = self.billing_date_of(self.last_interval_no + 1)

    def set_status(self, new: str, *, at: datetime) -> None:
        """Move to ``new`` or refuse with a readable reason (no save)."""
        if new == self.status:
            return
        if new not in SUBSCRIPTION_TRANSITIONS[self.status]:
            raise TransitionNotAllowed(
                f"A {self.get_status_display()} subscription cannot become {new}."
            )
        self.status = new
        self.status_changed_at = at
        if new in (S.DEACTIVATED, S.FINISHED):
            self.end_date = at
        elif new == S.ACTIVE:
            self.end_date = None

    @classmethod
    def saved_fields(cls) -> list[str]:
        """The columns a change writes: all but the id and ``created_at``."""
        return [
            f.attname
            for f in cls._meta.concrete_fields
            if not f.primary_key and f.attname != "created_at"
        ]

    def save_changes(self) -> None:
        """Write this row only if nobody changed it since we read it."""
        fields = {
            name: getattr(self, name) for name in self.saved_fields() if name != "row_version"
        }
        updated = Subscription.objects.filter(pk=self.pk, row_version=self.row_version).update(
            row_version=self.row_version + 1, **fields
        )
        if updated != 1:
            raise ConcurrentChange(
                f"Subscription {self.display_id} was changed by someone else; nothing was changed."
            )
        self.row_version += 1

    def billing_amount(self, items: list[SubscriptionItem]) -> Decimal:
        """What the next renewal bills: the Active items' lines."""
        return sum((i.line_amount for i in items if i.status == IS.ACTIVE), Decimal("0.00"))

    def customer_can_stop(self, item: SubscriptionItem) -> bool:
        """Whether the customer can stop ``item`` from renewing in the portal:
        turn automatic renewal off (SM 2.0) or cancel the item (SM 1.0)."""
        if self.status in (S.FINISHED, S.HANDLED_BY_CLIENT, S.NEW):
            return False
        if self.sm_version == SMVersion.V2:
            return self.renewal_type == RenewalType.AUTOMATIC
        return item.status == IS.ACTIVE

    def renewal_of_items(self) -> list[tuple[SubscriptionItem, str]]:
        """SM 1.0: how each item that still renews (Active, or Awaiting
        reinstate) does so, from its product: "Automatic" or "Manual". SM 2.0
        has one renewal type for the whole subscription."""
        return [
            (i, i.product.get_renewal_mode_display())
            for i in self.items.all()
            if i.status in RENEWING_ITEMS
        ]

    @property
    def billing_total(self) -> Decimal:
        """What the next renewal bills, read from the items (for pages and e-mails)."""
        return self.billing_amount(list(self.items.all()))

    def reminder_date(self, items: list[SubscriptionItem]) -> datetime:
        """When the renewal reminder is due: ``reminder_days`` before the
        billing date, the smallest product override, else the client's."""
        days = min(
            (i.product.reminder_days for i in items if i.product.reminder_days is not None),
            default=self.client.reminder_days,
        )
        return self.next_billing_date - timedelta(days=days)

    def snapshot(self, items: list[SubscriptionItem]) -> dict[str, Any]:
        """The values a history entry records before and after a change."""
        return {
            "status": self.status,
            "renewal_type": self.renewal_type,
            "next_billing_date": self.next_billing_date.isoformat(),
            "last_interval_no": self.last_interval_no,
            "items": {str(i.running_no): i.status for i in items},
            # What each item bills: product x quantity @ unit price (docs/api.md).
            "lines": {
                str(i.running_no): f"P{i.product_id} x {i.quantity} @ {i.unit_price}" for i in items
            },
        }


class SubscriptionItem(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    running_no = models.PositiveIntegerField()
    product = models.ForeignKey("commerce.Product", on_delete=models.PROTECT)
    status = models.CharField(max_length=20, choices=ItemStatus.choices)
    version = models.PositiveIntegerField(default=1)
    quantity = models.PositiveIntegerField(default=1)
    # Unit price in the subscription's currency (one currency per subscription).
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    recurrence_count = models.PositiveIntegerField(null=True, blank=True)
    last_interval_no = models.PositiveIntegerField(default=0)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField(null=True, blank=True)
    deactivation_date = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["running_no"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "running_no"], name="item_running_no_unique"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ItemStatus.values), name="item_status_valid"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="item_quantity_positive"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="item_price_not_negative"),
            models.CheckConstraint(condition=Q(running_no__gte=1), name="item_running_no_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id}/{self.running_no} {self.product_id}"

    @property
    def line_amount(self) -> Decimal:
        """Unit price x quantity, in the subscription's currency."""
        return self.unit_price * self.quantity

    @property
    def billing_events_done(self) -> bool:
        return self.recurrence_count is not None and self.last_interval_no >= self.recurrence_count

    def set_status(self, new: str, *, at: datetime) -> None:
        if new == self.status:
            return
        if new not in ITEM_TRANSITIONS[self.status]:
            raise TransitionNotAllowed(
                f"Item {self.running_no} is {self.get_status_display()} and cannot become {new}."
            )
        self.status = new
        if new in (IS.DEACTIVATED, IS.AWAITING_REINSTATE):
            self.deactivation_date = at
        elif new in (IS.FINISHED, IS.REMOVED):
            self.end_date = at
        elif new == IS.ACTIVE:
            self.deactivation_date = None
            self.end_date = None


class HistoryEntry(models.Model):
    """Append-only: entries are never edited or deleted (docs/lifecycle.md)."""

    class ActorKind(models.TextChoices):
        STAFF = "staff", "Staff user"
        API = "api", "API credential"
        CUSTOMER = "customer", "Customer"
        SYSTEM = "system", "System"

    # Entries are read per subscription; the client column scopes them but is
    # not indexed (an index per entry written is what renewals and the SM
    # migration pay for; only operators filter by client, in admin).
    # No database-enforced foreign keys (Decision, issue 8): history is an
    # append-only log written only by the services, next to the subscription
    # row they have just locked and changed, and deleted only by Django's
    # cascade from its subscription or client. A constraint queues a trigger
    # per entry that re-checks and key-share-locks that subscription and
    # client at commit: 1,000,000 of them in an SM 2.0 migration (8.8 of its
    # 28.5 s), three per renewal.
    client = models.ForeignKey(
        "commerce.Client", on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="history", db_constraint=False
    )
    created_at = models.DateTimeField()  # listed per subscription
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor_label = models.CharField(max_length=200)
    staff_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,  # done by Django when a user is deleted
        null=True,
        blank=True,
        db_index=False,  # a partial index below: most entries have no staff user
        db_constraint=False,  # as above: no per-entry trigger, even for a null
    )
    event_code = models.CharField(max_length=20, choices=EventCode.choices)
    summary = models.TextField()
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "history entries"
        indexes = [
            models.Index(
                fields=["staff_user"],
                condition=Q(staff_user__isnull=False),
                name="history_staff_user_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_code}: {self.summary}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TransitionNotAllowed("History entries are never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TransitionNotAllowed("History entries are never deleted.")

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for each value the entry changed."""
        return [(key, self.before.get(key), value) for key, value in self.after.items()]


class RenewalRun(models.Model):
    """One sweep of the schedule (docs/renewals.md): what was due and what happened.
    Batches update the counters as they finish, so the page shows progress."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"

    client = models.ForeignKey(
        "commerce.Client",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        help_text="Empty: all clients",
    )
    trigger = models.CharField(max_length=20, default="beat")
    as_of = models.DateTimeField(help_text="The moment the sweep treated as now")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    batches_total = models.PositiveIntegerField(default=0)
    batches_done = models.PositiveIntegerField(default=0)
    due = models.PositiveIntegerField(default=0)
    charged = models.PositiveIntegerField(default=0)
    declined = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    reminders = models.PositiveIntegerField(default=0)
    dunning = models.PositiveIntegerField(default=0)
    progress_at = models.DateTimeField(
        null=True, blank=True, help_text="When a batch of this run last finished"
    )
    resumed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the run was last found stalled and its unfinished batches re-sent",
    )
    resumes = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def is_stalled(self) -> bool:
        """Running, and no batch finished for ``RENEWAL_STALL_AFTER`` seconds."""
        if self.status != self.Status.RUNNING or self.progress_at is None:
            return False
        return timezone.now() - self.progress_at > timedelta(seconds=settings.RENEWAL_STALL_AFTER)

    @property
    def resumed_text(self) -> str:
        """'resumed once', 'resumed 3 times' or ''."""
        if not self.resumes:
            return ""
        return "resumed once" if self.resumes == 1 else f"resumed {self.resumes} times"

    @property
    def progress_percent(self) -> int:
        if not self.batches_total:
            return 100 if self.status == self.Status.FINISHED else 0
        return min(100, round(100 * self.batches_done / self.batches_total))


class WorkKind(models.TextChoices):
    """What a renewal batch does."""

    CHARGES = "charges", "Renewal charges"
    REMINDERS = "reminders", "Reminders"
    DUNNING = "dunning", "Dunning"


class RenewalBatch(models.Model):
    """One batch of a run (docs/renewals.md): the ids a worker is sent. It is
    finished once (``done_at``), whatever the number of deliveries, so a run
    knows which batches are still out and can send them again if it stalls."""

    run = models.ForeignKey(RenewalRun, on_delete=models.CASCADE, related_name="batches")
    kind = models.CharField(max_length=10, choices=WorkKind.choices)
    ids = models.JSONField(help_text="Subscription ids")
    attempt = models.PositiveSmallIntegerField(
        default=0, help_text="0 for the sweep's batch; 1, 2, 3 for retries of transient errors"
    )
    sent_at = models.DateTimeField(help_text="When it was last sent, or when its retry is due")
    sends = models.PositiveSmallIntegerField(default=1)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["run", "sent_at"],
                name="renewal_batch_open",
                condition=models.Q(done_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"Batch {self.pk} of run {self.run_id} ({self.kind}, {len(self.ids)})"


# --- report rollups (docs/reports.md) --------------------------------------------------


class RollupMetric(models.TextChoices):
    """What one rollup row counts; ``dim`` says more where a figure is split."""

    STATUS = "status", "Subscriptions by status"  # dim "status|renewal type"
    SUBSCRIBERS = "subscribers", "Customers with an active subscription"
    MRR = "mrr", "Billed per interval by active subscriptions"  # dim "months|days"
    STARTED = "started", "Subscriptions started (on the day)"
    ENDED = "ended", "Subscriptions ended and still so (on the day)"
    UPCOMING = "upcoming", "Active subscriptions billed next (on the day)"
    REVENUE = "revenue", "Billed by paid purchases (on the day paid)"  # dim: category
    RENEWAL_DUE = "renewal_due", "Renewal purchases opened (on the day)"
    RENEWAL_PAID = "renewal_paid", "Of them paid (on the day opened)"
    CHARGEBACK = "chargeback", "Chargebacks (on the day)"
    REFUND = "refund", "Credit notes issued (on the day)"


class RollupSourceKind(models.TextChoices):
    """The raw rows the rollups count (a subscription with its items, a
    purchase with its lines, a document)."""

    SUBSCRIPTION = "s", "Subscription"
    PURCHASE = "p", "Purchase"
    DOCUMENT = "d", "Document"


# The "no day" of rollup rows that are not per day (a unique key has no NULLs).
NO_DAY = datetime(1970, 1, 1).date()


class Rollup(models.Model):
    """One figure of the reports, per client, currency, product (0: all),
    metric, day and ``dim`` (docs/reports.md). Kept by ``subscriptions.rollups``
    from the raw tables; ``rebuild_rollups`` recomputes them."""

    client = models.ForeignKey(
        "commerce.Client", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    currency = models.CharField(max_length=3)
    product_id = models.BigIntegerField(help_text="0: all products")
    metric = models.CharField(max_length=20, choices=RollupMetric.choices)
    day = models.DateField()
    dim = models.CharField(max_length=40, blank=True)
    n = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "currency", "product_id", "metric", "day", "dim"],
                name="rollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.day} {self.dim}: {self.n} / {self.amount}"


class RollupCustomer(models.Model):
    """Active subscriptions of a customer per currency and product (0: all):
    the rollups count subscribers as customers whose ``n`` is above 0."""

    client = models.ForeignKey(
        "commerce.Client", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    currency = models.CharField(max_length=3)
    product_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "customer_id", "currency", "product_id"],
                name="rollup_customer_key",
            )
        ]

    def __str__(self) -> str:
        return f"Customer {self.customer_id}: {self.n}"


class RollupSource(models.Model):
    """What the rollups last counted of one raw row (its snapshot), so a
    change is counted as new minus old, and counting it twice changes nothing."""

    client = models.ForeignKey(
        "commerce.Client", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=1, choices=RollupSourceKind.choices)
    source_id = models.BigIntegerField()
    data = models.JSONField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["client", "kind", "source_id"], name="rollup_source_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.source_id}"


class RollupDirty(models.Model):
    """A raw row changed since the rollups counted it: written by database
    triggers in the changing transaction (migration 0014), consumed by
    ``subscriptions.rollups``. Not a foreign key: a deleted client's rows are
    dropped by the job."""

    id = models.BigAutoField(primary_key=True)
    client_id = models.BigIntegerField()
    kind = models.CharField(max_length=1, choices=RollupSourceKind.choices)
    source_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["client_id", "id"], name="rollup_dirty_client")]

    def __str__(self) -> str:
        return f"{self.kind} {self.source_id} (client {self.client_id})"
