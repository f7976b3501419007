"""The reports computed from the raw tables, as they were before rollups
(aggregate queries over subscriptions, items and purchases): the oracle
``test_rollups`` holds the rollup-backed ``subscriptions.reports`` to."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, Sum
from django.db.models.functions import TruncDay, TruncMonth

from commerce.models import Document, DocumentKind, Purchase, PurchaseItem
from commerce.money import quantize
from subscriptions.models import ItemStatus, Subscription, SubscriptionItem, SubscriptionStatus
from subscriptions.reports import (
    Filters,
    MonthRow,
    Mrr,
    Overview,
    Tally,
    Upcoming,
    churn_rows,
    money_back_rows,
    monthly_factor,
    mrr_of,
    revenue_rows,
    success_rows,
)

S, IS = SubscriptionStatus, ItemStatus
ZERO = Decimal("0")
LINE = ExpressionWrapper(
    F("unit_price") * F("quantity"), output_field=DecimalField(max_digits=20, decimal_places=2)
)


def _utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _month_key(value: Any) -> date:
    """TruncMonth gives a datetime on PostgreSQL and SQLite alike; keep the date."""
    return value.date() if isinstance(value, datetime) else value


def _subscriptions(f: Filters) -> Any:
    qs = Subscription.objects.filter(client=f.client, currency=f.currency)
    if f.product is not None:
        qs = qs.filter(
            Exists(SubscriptionItem.objects.filter(subscription=OuterRef("pk"), product=f.product))
        )
    return qs


def _active_items(f: Filters) -> Any:
    qs = SubscriptionItem.objects.filter(
        subscription__client=f.client,
        subscription__currency=f.currency,
        subscription__status=S.ACTIVE,
        status=IS.ACTIVE,
    )
    return qs.filter(product=f.product) if f.product is not None else qs


# --- overview ------------------------------------------------------------------------


def overview(f: Filters) -> Overview:
    """Counts by status and renewal type (one grouped scan) and subscribers."""
    subs = _subscriptions(f)
    by_status = [
        (r["status"], r["renewal_type"] or "", r["n"])
        for r in subs.values("status", "renewal_type")
        .annotate(n=Count("id"))
        .order_by("status", "renewal_type")
    ]
    subscribers = subs.filter(status=S.ACTIVE).aggregate(n=Count("customer", distinct=True))
    return Overview(
        active=sum(n for status, _, n in by_status if status == S.ACTIVE),
        subscribers=subscribers["n"],
        by_status=by_status,
    )


def mrr(f: Filters) -> Mrr:
    """Billed per interval length (one grouped join), normalised to a month."""
    per_interval = (
        _active_items(f)
        .values("subscription__interval_months", "subscription__interval_days")
        .annotate(billed=Sum(LINE))
        .order_by("subscription__interval_months", "subscription__interval_days")
    )
    billed = [
        (
            (row["subscription__interval_months"], row["subscription__interval_days"]),
            row["billed"] or 0,
        )
        for row in per_interval
    ]
    return mrr_of(billed, f.currency)


def mrr_by_product(f: Filters) -> list[tuple[str, Decimal]]:
    """Each product's share of MRR (one grouped join), largest first; the
    shares are rounded each, so they may differ from MRR by a cent."""
    rows = (
        _active_items(f)
        .values("product__name", "subscription__interval_months", "subscription__interval_days")
        .annotate(billed=Sum(LINE))
    )
    exact: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        factor = monthly_factor(
            row["subscription__interval_months"], row["subscription__interval_days"]
        )
        exact[row["product__name"]] += Decimal(row["billed"] or 0) * factor
    shares = [(name, quantize(value, f.currency)) for name, value in exact.items()]
    return sorted(shares, key=lambda share: (-share[1], share[0]))


# --- revenue ---------------------------------------------------------------------------


def revenue(f: Filters) -> list[MonthRow]:
    """Billed per month of payment and category (sign-up = new)."""
    lo, hi = f.range
    rows: Any
    if f.product is None:
        rows = (
            Purchase.objects.filter(
                client=f.client, currency=f.currency, paid_at__gte=lo, paid_at__lt=hi
            )
            .annotate(month=TruncMonth("paid_at"))
            .values("month", "category")
            .annotate(amount=Sum("total"))
        )
    else:
        rows = (
            PurchaseItem.objects.filter(
                purchase__client=f.client,
                purchase__currency=f.currency,
                purchase__paid_at__gte=lo,
                purchase__paid_at__lt=hi,
                product=f.product,
            )
            .annotate(month=TruncMonth("purchase__paid_at"), category=F("purchase__category"))
            .values("month", "category")
            .annotate(amount=Sum("amount"))
        )
    found: dict[tuple[date, str], Decimal] = {}
    for row in rows:
        amount = quantize(Decimal(row["amount"] or 0), f.currency)  # SQLite drops the scale
        found[(_month_key(row["month"]), row["category"])] = amount
    return revenue_rows(f, found)


def money_back(f: Filters) -> list[MonthRow]:
    """Per month: refunds (credit notes issued in it) and chargebacks (purchases
    charged back in it), counted and summed, and net revenue: what was billed
    in the month (``revenue``) minus both. All products (the filter is not
    applied: a refund of an amount belongs to no one product)."""
    lo, hi = f.range
    notes = (
        Document.objects.filter(
            client=f.client,
            kind=DocumentKind.CREDIT_NOTE,
            currency=f.currency,
            issued_at__gte=lo,
            issued_at__lt=hi,
        )
        .annotate(month=TruncMonth("issued_at"))
        .values("month")
        .annotate(n=Count("id"), amount=Sum("total"))
    )
    backs = (
        Purchase.objects.filter(
            client=f.client, currency=f.currency, charged_back_at__gte=lo, charged_back_at__lt=hi
        )
        .annotate(month=TruncMonth("charged_back_at"))
        .values("month")
        .annotate(n=Count("id"), amount=Sum("total"))
    )
    refunded = {
        _month_key(r["month"]): (r["n"], quantize(Decimal(r["amount"] or 0), f.currency))
        for r in notes
    }
    charged_back = {
        _month_key(r["month"]): (r["n"], quantize(Decimal(r["amount"] or 0), f.currency))
        for r in backs
    }
    billed = {row.month: row.values["Total"] for row in revenue(replace(f, product=None))}
    return money_back_rows(f, refunded, charged_back, billed)


# --- churn -----------------------------------------------------------------------------


def churn(f: Filters) -> list[MonthRow]:
    """Per month: active at its start, started in it, churned in it, and the
    churn rate: churned ÷ (active at the start + started in the month), in
    percent with two decimals; none (shown "–") for a month with neither."""
    lo, hi = f.range
    population = _subscriptions(f).exclude(status__in=[S.NEW, S.HANDLED_BY_CLIENT])
    ended = population.filter(status__in=[S.DEACTIVATED, S.FINISHED], end_date__isnull=False)
    # Started / ended before the first month: one count each.
    before = population.aggregate(
        started=Count("id", filter=Q(start_date__lt=lo)),
        ended=Count("id", filter=Q(status__in=[S.DEACTIVATED, S.FINISHED], end_date__lt=lo)),
    )
    started_in = _counts_by_month(
        population.filter(start_date__gte=lo, start_date__lt=hi), "start_date"
    )
    ended_in = _counts_by_month(ended.filter(end_date__gte=lo, end_date__lt=hi), "end_date")
    active = before["started"] - before["ended"]
    return churn_rows(f, active, started_in, ended_in)


def _counts_by_month(qs: Any, column: str) -> dict[date, int]:
    rows = qs.annotate(month=TruncMonth(column)).values("month").annotate(n=Count("id"))
    return {_month_key(r["month"]): r["n"] for r in rows}


# --- renewals --------------------------------------------------------------------------


def renewal_success(f: Filters) -> list[MonthRow]:
    lo, hi = f.range
    qs = Purchase.objects.filter(
        client=f.client,
        currency=f.currency,
        category=Purchase.Category.RENEWAL,
        created_at__gte=lo,
        created_at__lt=hi,
    )
    if f.product is not None:
        qs = qs.filter(
            Exists(PurchaseItem.objects.filter(purchase=OuterRef("pk"), product=f.product))
        )
    rows = (
        qs.annotate(month=TruncMonth("created_at"))
        .values("month")
        .annotate(due=Count("id"), charged=Count("id", filter=Q(paid_at__isnull=False)))
    )
    found = {_month_key(r["month"]): (r["due"], r["charged"]) for r in rows}
    return success_rows(f, found)


def upcoming(f: Filters, *, now: datetime | None = None) -> Upcoming:
    """Active subscriptions billed in the next 90 days, per week from today."""
    now = now or f.client.now()  # a sandbox client's test clock
    today = _utc(now.date())
    span = (now, now + timedelta(days=90))
    # Grouped by billing day (at most 90 groups), then summed into weeks here:
    # subscriptions counted on their own table (no DISTINCT over the join),
    # amounts from their Active items.
    counts = {
        _day(r["day"]): r["n"]
        for r in _subscriptions(f)
        .filter(status=S.ACTIVE, next_billing_date__gte=span[0], next_billing_date__lt=span[1])
        .annotate(day=TruncDay("next_billing_date"))
        .values("day")
        .annotate(n=Count("id"))
    }
    amounts = {
        _day(r["day"]): r["amount"]
        for r in _active_items(f)
        .filter(
            subscription__next_billing_date__gte=span[0],
            subscription__next_billing_date__lt=span[1],
        )
        .annotate(day=TruncDay("subscription__next_billing_date"))
        .values("day")
        .annotate(amount=Sum(LINE))
    }
    rows = [
        {"day": day, "subs": counts.get(day, 0), "amount": amounts.get(day)}
        for day in sorted(set(counts) | set(amounts))
    ]
    weeks_out: dict[int, Tally] = defaultdict(Tally)
    windows = {30: Tally(), 90: Tally()}
    for row in rows:
        offset = (row["day"] - today.date()).days
        amount = quantize(Decimal(row["amount"] or 0), f.currency)
        weeks_out[offset // 7].add(row["subs"], amount)
        for limit, window in windows.items():
            if offset < limit:
                window.add(row["subs"], amount)
    weeks = [
        (
            today.date() + timedelta(days=7 * w),
            weeks_out[w].count,
            quantize(weeks_out[w].amount, f.currency),
        )
        for w in range(13)
    ]
    return Upcoming(
        weeks,
        (windows[30].count, quantize(windows[30].amount, f.currency)),
        (windows[90].count, quantize(windows[90].amount, f.currency)),
    )


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value
