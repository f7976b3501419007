"""The plain paid renewal, a batch at a time (PostgreSQL): an optimisation of
one branch of the renewal rule, not a second rule (docs/renewals.md).

``renewals.charge_batch`` uses it on PostgreSQL. A batch costs a constant
number of SQL statements whatever its size, and every value it writes is
computed by the functions the per-row services use:

* ``claim`` locks the still-due subscriptions among the ids (skipping rows
  another worker holds), asks ``services.is_plain_renewal`` which of them
  renew on the plain branch, and opens their pending renewal purchases and
  lines (``services.renewal_purchase`` / ``renewal_lines``) with one COPY
  each. The others go to the per-row services.
* ``record_paid`` applies ``services.paid_renewal`` to the claimed rows in
  memory (dates, interval counts, history summary, payload, e-mail) and
  writes the result without reading anything again: one ``UPDATE … FROM
  unnest(…)`` per table — the purchases' and subscriptions' with a
  compare-and-swap (still pending; row version still the claim's) — and one
  COPY each for history, outbox and e-mails. A subscription changed by
  anyone since it was claimed is left to the per-row
  ``services.record_charge``, which reads it again.

``tests/subscriptions/test_renewal_contract.py`` runs the same scenarios
through this path and the per-row services and compares every row written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Model

from commerce.bulk import attach, binary_cursor, guarded_update, insert_rows, load, update_rows
from commerce.gateway import ChargeRequest, ChargeResult
from commerce.models import Client, Product, Purchase, PurchaseItem
from customers.models import Customer, PaymentMethod

from . import services
from .models import Subscription, SubscriptionItem, SubscriptionStatus

M = TypeVar("M", bound=Model)

# What recording a paid renewal writes of the purchase.
PURCHASE_FIELDS = ["status", "paid_at", "gateway_reference", "charge_attempts"]


@dataclass
class Claim:
    """A claimed plain renewal: the subscription and items as read under the
    claim's lock, and the pending purchase opened for them."""

    sub: Subscription
    items: list[SubscriptionItem]
    purchase: Purchase
    lines: list[PurchaseItem]

    @property
    def request(self) -> ChargeRequest:
        """The charge: a fresh purchase, so attempt 1."""
        return ChargeRequest(
            self.purchase.total,
            self.purchase.currency,
            self.sub.payment_method,
            services.renewal_key(self.sub.pk, self.purchase.interval_no or 0, 1),
            client_id=self.sub.client_id,
        )


@dataclass
class Known:
    """Clients and products already read by an earlier part of the same
    batch (one client's, so mostly the same few rows)."""

    clients: dict[int, Client] = field(default_factory=dict)
    products: dict[int, Product] = field(default_factory=dict)


def claim(
    ids: list[int], *, as_of: datetime, known: Known | None = None
) -> tuple[list[Claim], list[int]]:
    """Claim the still-due subscriptions among ``ids``: returns the plain
    ones, each with its new pending purchase, and the ids of the others
    (for the per-row services). Commits before returning, so that the
    charge happens outside any transaction.

    The claim commits without waiting for its WAL flush (``synchronous_commit
    off``): losing it in a crash loses only pending purchases, and a claim
    made again charges with the same gateway key (attempt 1), which the
    gateway answers from its ledger. Whatever follows it (the ledger row, the
    recorded charge) commits synchronously, which flushes the claim too."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        known = known or Known()
        subs, opened = _lock_due(ids, as_of, known)
        if not subs:
            return [], []
        items = items_by_subscription(subs, known)
        plain: list[Subscription] = []
        special: list[int] = []
        for sub in subs:
            if sub.pk in opened or not services.is_plain_renewal(sub, items[sub.pk]):
                special.append(sub.pk)
            else:
                plain.append(sub)
        purchases = [services.renewal_purchase(sub, items[sub.pk], at=as_of) for sub in plain]
        insert_rows(purchases, returning_ids=True)
        lines = [services.renewal_lines(p, items[p.subscription_id or 0]) for p in purchases]
        insert_rows([line for group in lines for line in group])
    claims = [
        Claim(sub, items[sub.pk], purchase, group)
        for sub, purchase, group in zip(plain, purchases, lines, strict=True)
    ]
    return claims, special


# The subscription (all columns), what a renewal needs of its customer and
# payment method, locked unless another worker holds it; and whether its next
# interval already has a renewal purchase (a crash after a claim, a retry
# after a decline: the per-row services take it on), an index lookup each
# (one_renewal_purchase_per_interval).
_SUB = [f.attname for f in Subscription._meta.concrete_fields]
_CUSTOMER = ["id", "email"]
_METHOD = ["id", "kind", "token", "expiry_month", "expiry_year"]
LOCK_DUE = f"""
SELECT {", ".join(f"s.{f.column}" for f in Subscription._meta.concrete_fields)},
       c.email, pm.kind, pm.token, pm.expiry_month, pm.expiry_year,
       EXISTS (SELECT FROM commerce_purchase p WHERE p.subscription_id = s.id
               AND p.interval_no = s.last_interval_no + 1 AND p.category = 'renewal') AS opened
FROM subscriptions_subscription s
JOIN customers_customer c ON c.id = s.customer_id
JOIN customers_paymentmethod pm ON pm.id = s.payment_method_id
WHERE s.id = ANY(%b::bigint[]) AND s.status = %s AND s.next_billing_date <= %s
ORDER BY s.id
FOR UPDATE OF s SKIP LOCKED
"""
_ITEM = [f.attname for f in SubscriptionItem._meta.concrete_fields]
ITEMS = f"""
SELECT {", ".join(f.column for f in SubscriptionItem._meta.concrete_fields)}
FROM subscriptions_subscriptionitem WHERE subscription_id = ANY(%b::bigint[])
ORDER BY subscription_id, running_no
"""


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Rows of a statement, read in PostgreSQL's binary format (no text to
    parse for dates and numbers)."""
    with binary_cursor(connection) as cursor:
        cursor.execute(sql, params, binary=True)
        return list(cursor.fetchall())


def _lock_due(ids: list[int], as_of: datetime, known: Known) -> tuple[list[Subscription], set[int]]:
    """The still-due subscriptions among ``ids``, locked, as model instances
    with their client, customer and payment method, and the ids of those
    whose next interval already has a renewal purchase (one statement)."""
    db, n = connection.alias, len(_SUB)
    rows = _fetch(LOCK_DUE, [ids, SubscriptionStatus.ACTIVE.value, as_of])
    clients = _read(Client, {row[_SUB.index("client_id")] for row in rows}, known.clients)
    subs, opened = [], set()
    for row in rows:
        sub = load(Subscription, _SUB, row[:n], db)
        attach(sub, "client", clients[sub.client_id])
        attach(sub, "customer", load(Customer, _CUSTOMER, (sub.customer_id, row[n]), db))
        method = (sub.payment_method_id, *row[n + 1 : -1])
        attach(sub, "payment_method", load(PaymentMethod, _METHOD, method, db))
        subs.append(sub)
        if row[-1]:
            opened.add(sub.pk)
    return subs, opened


def _read(model: type[M], ids: set[int], known: dict[int, M]) -> dict[int, M]:
    """The rows of ``ids`` not in ``known`` read in one query and added to it."""
    missing = ids - known.keys()
    if missing:
        known.update(model._default_manager.in_bulk(missing))
    return known


def items_by_subscription(
    subs: list[Subscription], known: Known | None = None
) -> dict[int, list[SubscriptionItem]]:
    """The items of each subscription, with their products (read once each)."""
    grouped: dict[int, list[SubscriptionItem]] = {sub.pk: [] for sub in subs}
    db, ids = connection.alias, [s.pk for s in subs]
    if connection.vendor == "postgresql":
        items = [load(SubscriptionItem, _ITEM, row, db) for row in _fetch(ITEMS, [ids])]
    else:  # reminders in the embedded mode (SQLite)
        items = list(
            SubscriptionItem.objects.filter(subscription_id__in=ids).order_by(
                "subscription_id", "running_no"
            )
        )
    products = _read(Product, {item.product_id for item in items}, (known or Known()).products)
    for item in items:
        attach(item, "product", products[item.product_id])
        grouped[item.subscription_id].append(item)
    return grouped


@dataclass
class Recorded:
    charged: int = 0
    skipped: int = 0  # recorded by another batch meanwhile
    # Changed since the claim: for ``services.record_charge``.
    stale: list[tuple[Claim, ChargeResult]] = field(default_factory=list)


def record_paid(paid: list[tuple[Claim, ChargeResult]], *, at: datetime) -> Recorded:
    """Record approved charges of claimed plain renewals, in the caller's
    transaction (see the module doc). Nothing is read again: the purchases
    are written if still pending and the subscriptions if their row version
    is still the claim's (compare-and-swap in the UPDATEs themselves, which
    take the row locks — purchases first, then subscriptions, the per-row
    services' order)."""
    out = Recorded()
    if not paid:
        return out
    before = {c.purchase.pk: _purchase_state(c.purchase) for c, _ in paid}
    versions = {c.sub.pk: c.sub.row_version for c, _ in paid}
    written: dict[int, services.Written] = {}
    for claim, result in paid:
        purchase = claim.purchase
        purchase.status, purchase.paid_at = Purchase.Status.PAID, at
        purchase.gateway_reference = result.reference
        purchase.charge_attempts += 1
        locked = services.Locked(claim.sub, claim.items, claim.sub.snapshot(claim.items))
        written[claim.sub.pk] = services.paid_renewal(
            locked,
            purchase,
            charged={line.subscription_item_id for line in claim.lines},  # type: ignore[misc]
            actor=services.SYSTEM,
            at=at,
            dates=services.NextDates.SCHEDULE,
            lines=claim.lines,
        )
        claim.sub.row_version += 1  # what Subscription.save_changes does
    pending = [c.purchase for c, _ in paid]
    still_pending = guarded_update(
        pending, PURCHASE_FIELDS, {"status": [Purchase.Status.PENDING] * len(pending)}
    )
    claims = [(c, r) for c, r in paid if c.purchase.pk in still_pending]
    out.skipped = len(paid) - len(claims)  # recorded by another batch meanwhile
    subs = [c.sub for c, _ in claims]
    unchanged = guarded_update(
        subs,
        services.billing.PAID_RENEWAL_FIELDS,
        {"row_version": [versions[sub.pk] for sub in subs]},
    )
    recorded = [c for c, _ in claims if c.sub.pk in unchanged]
    out.stale = [(c, r) for c, r in claims if c.sub.pk not in unchanged]
    if out.stale:
        # Changed since the claim: its purchase goes back to pending (in this
        # transaction, so nobody saw it paid) for ``services.record_charge``.
        for claim, _ in out.stale:
            _restore_purchase(claim.purchase, before[claim.purchase.pk])
        update_rows([c.purchase for c, _ in out.stale], PURCHASE_FIELDS)
    update_rows([i for c in recorded for i in c.items], services.billing.PAID_RENEWAL_ITEM_FIELDS)
    services.write([written[c.sub.pk] for c in recorded])
    out.charged = len(recorded)
    return out


def _purchase_state(purchase: Purchase) -> tuple[Any, ...]:
    return tuple(getattr(purchase, name) for name in PURCHASE_FIELDS)


def _restore_purchase(purchase: Purchase, state: tuple[Any, ...]) -> None:
    for name, value in zip(PURCHASE_FIELDS, state, strict=True):
        setattr(purchase, name, value)
