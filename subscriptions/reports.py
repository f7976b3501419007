"""Subscription reports (docs/back-office.md, docs/reports.md). Every figure
adds up rollup rows (``subscriptions.rollups``: per client, currency,
product, metric and day, kept as the raw rows change), so a page reads a few
dozen rows whatever the number of subscriptions.

Definitions (shown on the pages too):
- *active*: subscriptions with status ``Active`` today; *subscribers*: their
  distinct customers;
- *MRR*: each active subscription's next billing amount (its ``Active`` items'
  unit price x quantity) normalised to a month: x 365 / (365 x interval months
  + 12 x interval days), so a yearly price counts 1/12, a 7-day price 365/84;
  ARR = 12 x MRR. Rounded half-up to the cent once, at the end;
- *new vs renewal revenue*: what paid purchases billed (before refunds) per
  month of payment: sign-ups, renewals, and item changes charged at once;
- *churn* of a month: subscriptions that became ``Deactivated`` or
  ``Finished`` in it and are still so, ÷ subscriptions active at its start
  (started before it, not ended before it; never-paid ``New`` ones excluded);
- *renewal success rate* of a month: renewal purchases opened in it that
  were paid ÷ all opened (one per subscription and interval, retries
  included in the same purchase);
- *upcoming renewals*: active subscriptions whose next billing day falls in
  the 30 / 90 days from today (today included), with the amount they will be
  billed.
Filters: currency (always one: amounts in different currencies are never
added), product (subscriptions with an item of it; amounts of its lines
only), date range (the months of the per-month figures).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db.models import Count

from commerce.models import Client, Product, Purchase
from commerce.money import quantize

from . import rollups
from .models import Rollup, RollupMetric, SubscriptionStatus

S, M = SubscriptionStatus, RollupMetric
ZERO = Decimal("0")


@dataclass(frozen=True)
class Filters:
    client: Client
    currency: str
    start: date  # first day of the first month
    end: date  # last day shown (inclusive)
    product: Product | None = None

    @property
    def months(self) -> list[date]:
        first, last = self.start.replace(day=1), self.end.replace(day=1)
        out = []
        while first <= last:
            out.append(first)
            first += relativedelta(months=1)
        return out

    @property
    def range(self) -> tuple[datetime, datetime]:
        """[start of the first month, start of the day after ``end``) in UTC."""
        return _utc(self.start.replace(day=1)), _utc(self.end + timedelta(days=1))


def _utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def currencies(client: Client) -> list[str]:
    """The currencies the client sells in (from its products), most used first."""
    rows = (
        Product.objects.filter(client=client)
        .values("currency")
        .annotate(n=Count("id"))
        .order_by("-n", "currency")
    )
    return [r["currency"] for r in rows] or ["EUR"]


def _read(
    f: Filters,
    metrics: list[str],
    *,
    all_products: bool = False,
    since: date | None = None,
    until: date | None = None,
) -> list[Any]:
    """The rollup rows of the filters (docs/reports.md), counting the client's
    latest changes first when there are a few (``rollups.fresh``)."""
    rollups.fresh(f.client.pk)
    product = 0 if all_products or f.product is None else f.product.pk
    return rollups.rows(f.client, f.currency, product, metrics, since=since, until=until)


def _interval(dim: str) -> tuple[int, int]:
    months, days = dim.split("|")
    return int(months), int(days)


# --- overview ------------------------------------------------------------------------


@dataclass
class Overview:
    active: int
    subscribers: int
    by_status: list[tuple[str, str, int]]  # (status, renewal type or "", count)


@dataclass
class Mrr:
    mrr: Decimal
    arr: Decimal
    by_interval: list[tuple[int, int, Decimal, Decimal]]  # months, days, billed, per month


def monthly_factor(months: int, days: int) -> Decimal:
    """How much of one interval's amount falls in an average month."""
    return Decimal(365) / (Decimal(365) * months + Decimal(12) * days)


def overview(f: Filters) -> Overview:
    """Counts by status and renewal type, and subscribers (rollups)."""
    found = _read(f, [M.STATUS, M.SUBSCRIBERS])
    by_status = sorted(
        (*dim.split("|"), n) for metric, _, dim, n, _ in found if metric == M.STATUS and n
    )
    return Overview(
        active=sum(n for status, _, n in by_status if status == S.ACTIVE),
        subscribers=sum(n for metric, _, _, n, _ in found if metric == M.SUBSCRIBERS),
        by_status=[(status, renewal, n) for status, renewal, n in by_status],
    )


def mrr(f: Filters) -> Mrr:
    """Billed per interval length by Active items of active subscriptions
    (rollups), normalised to a month."""
    found = sorted((_interval(dim), amount) for _, _, dim, n, amount in _read(f, [M.MRR]) if n)
    return mrr_of(found, f.currency)


def mrr_of(billed: list[tuple[tuple[int, int], Any]], currency: str) -> Mrr:
    """MRR and ARR from what is billed per interval length ((months, days),
    amount), in interval order: each normalised to a month."""
    exact, intervals = ZERO, []
    for (months, days), amount in billed:
        billed_amount = quantize(Decimal(amount), currency)
        monthly = billed_amount * monthly_factor(months, days)
        exact += monthly
        intervals.append((months, days, billed_amount, quantize(monthly, currency)))
    return Mrr(
        mrr=quantize(exact, currency),
        arr=quantize(exact * 12, currency),
        by_interval=intervals,
    )


def mrr_by_product(f: Filters) -> list[tuple[str, Decimal]]:
    """Each product's share of MRR (rollups per product), largest first; the
    shares are rounded each, so they may differ from MRR by a cent."""
    rollups.fresh(f.client.pk)
    found = Rollup.objects.filter(
        client=f.client, currency=f.currency, metric=M.MRR, n__gt=0
    ).exclude(product_id=0)
    if f.product is not None:
        found = found.filter(product_id=f.product.pk)
    rows = list(found.values_list("product_id", "dim", "amount"))
    names = dict(Product.objects.filter(pk__in={r[0] for r in rows}).values_list("pk", "name"))
    exact: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for product_id, dim, amount in rows:
        exact[names[product_id]] += Decimal(amount) * monthly_factor(*_interval(dim))
    shares = [(name, quantize(value, f.currency)) for name, value in exact.items()]
    return sorted(shares, key=lambda share: (-share[1], share[0]))


# --- revenue ---------------------------------------------------------------------------

CATEGORIES = [
    (Purchase.Category.SIGNUP, "New"),
    (Purchase.Category.RENEWAL, "Renewal"),
    (Purchase.Category.ALIGNMENT, "Item changes"),
]


@dataclass
class MonthRow:
    month: date
    values: dict[str, Any] = field(default_factory=dict)


def _month_range(f: Filters) -> dict[str, Any]:
    lo, hi = f.range
    return {"since": lo.date(), "until": hi.date()}


def revenue(f: Filters) -> list[MonthRow]:
    """Billed per month of payment and category (sign-up = new): purchase
    totals, or with a product filter its lines' amounts (rollups)."""
    found: dict[tuple[date, str], Decimal] = defaultdict(lambda: ZERO)
    for _, day, category, _, amount in _read(f, [M.REVENUE], **_month_range(f)):
        found[(day.replace(day=1), category)] += amount
    return revenue_rows(f, found)


def revenue_rows(f: Filters, found: dict[tuple[date, str], Decimal]) -> list[MonthRow]:
    """The Revenue table from what was billed per (month, category)."""
    out = []
    for month in f.months:
        none = quantize(ZERO, f.currency)
        values = {
            label: quantize(found.get((month, cat), none), f.currency) for cat, label in CATEGORIES
        }
        values["Total"] = sum(values.values(), none)
        out.append(MonthRow(month, values))
    return out


def money_back(f: Filters) -> list[MonthRow]:
    """Per month: refunds (credit notes issued in it) and chargebacks (purchases
    charged back in it), counted and summed, and net revenue: what was billed
    in the month (``revenue``) minus both. All products (the filter is not
    applied: a refund of an amount belongs to no one product)."""
    none = quantize(ZERO, f.currency)
    refunded: dict[date, tuple[int, Decimal]] = defaultdict(lambda: (0, none))
    charged_back: dict[date, tuple[int, Decimal]] = defaultdict(lambda: (0, none))
    found = _read(f, [M.REFUND, M.CHARGEBACK], all_products=True, **_month_range(f))
    for metric, day, _, n, amount in found:
        into = refunded if metric == M.REFUND else charged_back
        count, total = into[day.replace(day=1)]
        into[day.replace(day=1)] = (count + n, total + quantize(amount, f.currency))
    billed = {row.month: row.values["Total"] for row in revenue(replace(f, product=None))}
    return money_back_rows(f, refunded, charged_back, billed)


MonthCount = dict[date, tuple[int, Decimal]]  # month -> (how many, how much)


def money_back_rows(
    f: Filters, refunded: MonthCount, charged_back: MonthCount, billed: dict[date, Decimal]
) -> list[MonthRow]:
    """The refunds and chargebacks table, net of what was billed per month."""
    none = quantize(ZERO, f.currency)
    out = []
    for month in f.months:
        n_refunds, refunds = refunded.get(month, (0, none))
        n_backs, backed = charged_back.get(month, (0, none))
        out.append(
            MonthRow(
                month,
                {
                    "Refunds": n_refunds,
                    "Refunded": refunds,
                    "Chargebacks": n_backs,
                    "Charged back": backed,
                    "Net revenue": billed.get(month, none) - refunds - backed,
                },
            )
        )
    return out


# --- churn -----------------------------------------------------------------------------


def churn(f: Filters) -> list[MonthRow]:
    """Per month: active at its start, started in it, churned in it, and the
    churn rate: churned ÷ (active at the start + started in the month), in
    percent with two decimals; none (shown "–") for a month with neither."""
    lo, hi = (moment.date() for moment in f.range)
    active = 0
    started_in: dict[date, int] = defaultdict(int)
    ended_in: dict[date, int] = defaultdict(int)
    for metric, day, _, n, _ in _read(f, [M.STARTED, M.ENDED], until=hi):
        sign = 1 if metric == M.STARTED else -1
        if day < lo:
            active += sign * n
        else:
            (started_in if sign > 0 else ended_in)[day.replace(day=1)] += n
    return churn_rows(f, active, started_in, ended_in)


def churn_rows(
    f: Filters, active: int, started_in: dict[date, int], ended_in: dict[date, int]
) -> list[MonthRow]:
    """The Churn table from the subscriptions active before the first month
    and those started and ended per month."""
    out = []
    for month in f.months:
        churned, started = ended_in.get(month, 0), started_in.get(month, 0)
        exposed = active + started
        rate = (Decimal(churned) * 100 / exposed).quantize(Decimal("0.01")) if exposed else None
        out.append(
            MonthRow(
                month,
                {
                    "Active at start": active,
                    "Started": started,
                    "Churned": churned,
                    "Churn %": rate,
                },
            )
        )
        active += started - churned
    return out


# --- renewals --------------------------------------------------------------------------


def renewal_success(f: Filters) -> list[MonthRow]:
    """Renewal purchases opened per month, and how many of them were paid."""
    found: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for metric, day, _, n, _ in _read(f, [M.RENEWAL_DUE, M.RENEWAL_PAID], **_month_range(f)):
        found[day.replace(day=1)][0 if metric == M.RENEWAL_DUE else 1] += n
    return success_rows(f, found)


def success_rows(f: Filters, found: dict[date, Any]) -> list[MonthRow]:
    """The Renewal success table from (opened, paid) per month."""
    out = []
    for month in f.months:
        due, charged = found.get(month, (0, 0))
        rate = (Decimal(charged) * 100 / due).quantize(Decimal("0.01")) if due else None
        out.append(MonthRow(month, {"Due": due, "Charged": charged, "Success %": rate}))
    return out


@dataclass
class Upcoming:
    weeks: list[tuple[date, int, Decimal]]  # week start, subscriptions, amount
    next_30: tuple[int, Decimal]
    next_90: tuple[int, Decimal]


def upcoming(f: Filters, *, now: datetime | None = None) -> Upcoming:
    """Active subscriptions billed from today for 90 days, per week from today
    (rollups per billing day: a subscription due earlier today and not yet
    renewed counts today)."""
    now = now or f.client.now()  # a sandbox client's test clock
    today = now.astimezone(UTC).date()
    weeks_out: dict[int, Tally] = defaultdict(Tally)
    windows = {30: Tally(), 90: Tally()}
    for _, day, _, n, amount in _read(
        f, [M.UPCOMING], since=today, until=today + timedelta(days=90)
    ):
        offset = (day - today).days
        weeks_out[offset // 7].add(n, amount)
        for limit, window in windows.items():
            if offset < limit:
                window.add(n, amount)
    weeks = [
        (
            today + timedelta(days=7 * w),
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


@dataclass
class Tally:
    count: int = 0
    amount: Decimal = ZERO

    def add(self, count: int, amount: Decimal) -> None:
        self.count += count
        self.amount += amount
