"""Report rollups (docs/reports.md): the reports' figures per client,
currency, product, metric and day, kept as the raw rows change, so a report
page reads a few dozen rollup rows whatever the number of subscriptions.

How they stay right:

* Database triggers (migration 0014) write a ``RollupDirty`` row for every
  subscription, item, purchase, purchase line or document written, in the
  writing transaction, whoever writes it.
* ``catch_up`` (beat every 10 seconds, and a report page before it reads)
  takes a client's dirty rows, reads each named source as it is now
  (``snapshot_*``), and adds ``contributions(new) - contributions(old)`` to
  the rollups, ``old`` being the snapshot it counted last time
  (``RollupSource``). One transaction per pass, under a lock on the client
  row (``FOR NO KEY UPDATE``: writers of the client's rows do not wait), so a
  pass run twice, or after a crash, counts nothing twice.
* ``rebuild`` recomputes a client's rollups from the raw tables.

``contributions`` is the one home of what each report counts; the report
functions (``subscriptions.reports``) only add rollup rows up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from commerce.bulk import chunks, insert_rows, update_rows
from commerce.models import Client, Document, DocumentKind, Purchase, PurchaseItem

from .models import (
    NO_DAY,
    ItemStatus,
    Rollup,
    RollupCustomer,
    RollupDirty,
    RollupMetric,
    RollupSource,
    RollupSourceKind,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)

M, K, S = RollupMetric, RollupSourceKind, SubscriptionStatus
ZERO = Decimal("0")
ALL = 0  # product_id of the rows over all products

# A rollup key within a client: (currency, product_id, metric, day, dim).
Key = tuple[str, int, str, date, str]
Snapshot = dict[str, Any]

# How many sources one pass of ``catch_up`` counts (one transaction).
PASS_SIZE = 2000


def _day(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).date().isoformat()


# --- snapshots: what the rollups need of a raw row ----------------------------------------


def snapshot_subscriptions(client_id: int, ids: Iterable[int]) -> dict[int, Snapshot]:
    """Each subscription: currency, status, renewal type, start / end / next
    billing days, interval, customer, every product it has an item of, and
    what its Active items bill per product."""
    subs = Subscription.objects.filter(client_id=client_id, pk__any=list(ids)).values_list(
        "pk",
        "currency",
        "status",
        "renewal_type",
        "start_date",
        "end_date",
        "next_billing_date",
        "interval_months",
        "interval_days",
        "customer_id",
    )
    out: dict[int, Snapshot] = {}
    for pk, currency, status, renewal, start, end, nxt, months, days, customer in subs:
        out[pk] = {
            "c": currency,
            "st": status,
            "rt": renewal or "",
            "sd": _day(start),
            "ed": _day(end),
            "nd": _day(nxt),
            "iv": f"{months}|{days}",
            "cu": customer,
            "pr": [],
            "ln": {},
            "lc": {},
        }
    items = SubscriptionItem.objects.filter(subscription_id__any=list(out)).values_list(
        "subscription_id", "product_id", "status", "unit_price", "quantity"
    )
    for sub_id, product, status, price, quantity in items.order_by("subscription_id", "running_no"):
        snap = out[sub_id]
        if product not in snap["pr"]:
            snap["pr"].append(product)
        if status == ItemStatus.ACTIVE:
            key = str(product)
            snap["ln"][key] = str(Decimal(snap["ln"].get(key, "0")) + price * quantity)
            snap["lc"][key] = snap["lc"].get(key, 0) + 1
    return out


def snapshot_purchases(client_id: int, ids: Iterable[int]) -> dict[int, Snapshot]:
    """Each purchase: currency, category, the days it was opened, paid and
    charged back, its total, and its lines' amounts per product."""
    rows = Purchase.objects.filter(client_id=client_id, pk__any=list(ids)).values_list(
        "pk", "currency", "category", "created_at", "paid_at", "charged_back_at", "total"
    )
    out: dict[int, Snapshot] = {
        pk: {
            "c": currency,
            "ca": category,
            "cd": _day(created),
            "pd": _day(paid),
            "bd": _day(charged_back),
            "t": str(total),
            "ln": {},
        }
        for pk, currency, category, created, paid, charged_back, total in rows
    }
    lines = PurchaseItem.objects.filter(purchase_id__any=list(out)).values_list(
        "purchase_id", "product_id", "amount"
    )
    for purchase_id, product, amount in lines.order_by("purchase_id", "running_no"):
        snap, key = out[purchase_id], str(product)
        snap["ln"][key] = str(Decimal(snap["ln"].get(key, "0")) + amount)
    return out


def snapshot_documents(client_id: int, ids: Iterable[int]) -> dict[int, Snapshot]:
    """Each credit note: currency, day issued, total (invoices count nothing)."""
    rows = Document.objects.filter(
        client_id=client_id, pk__any=list(ids), kind=DocumentKind.CREDIT_NOTE
    ).values_list("pk", "currency", "issued_at", "total")
    return {pk: {"c": c, "id": _day(at), "t": str(total)} for pk, c, at, total in rows}


SNAPSHOTS = {
    K.SUBSCRIPTION: snapshot_subscriptions,
    K.PURCHASE: snapshot_purchases,
    K.DOCUMENT: snapshot_documents,
}


# --- contributions: what a snapshot adds to the rollups ------------------------------------

Figures = dict[Key, list[Any]]  # key -> [n, amount]
Customers = dict[tuple[str, int, int], int]  # (currency, product, customer) -> n


def contributions(
    kind: str, snap: Snapshot | None, figures: Figures, customers: Customers, sign: int
) -> None:
    """Add ``sign`` x what one source counts to ``figures`` and ``customers``
    (the report definitions, docs/reports.md)."""
    if snap is None:
        return

    def add(
        product: int, metric: str, day: str | None, dim: str = "", n: int = 0, amount: Any = ZERO
    ) -> None:
        key = (snap["c"], product, metric, date.fromisoformat(day) if day else NO_DAY, dim)
        row = figures.setdefault(key, [0, ZERO])
        row[0] += sign * n
        row[1] += sign * Decimal(amount)

    if kind == K.SUBSCRIPTION:
        products = [ALL, *snap["pr"]]
        status = snap["st"]
        for p in products:
            add(p, M.STATUS, None, f"{status}|{snap['rt']}", n=1)
        if status == S.ACTIVE:
            billed = sum((Decimal(a) for a in snap["ln"].values()), ZERO)
            for p in products:
                key = (snap["c"], p, snap["cu"])
                customers[key] = customers.get(key, 0) + sign
                amount = billed if p == ALL else Decimal(snap["ln"].get(str(p), "0"))
                add(p, M.UPCOMING, snap["nd"], n=1, amount=amount)
                # n: Active items billed (an interval with items billing 0 still shows)
                items = sum(snap["lc"].values()) if p == ALL else snap["lc"].get(str(p), 0)
                if items:
                    add(p, M.MRR, None, snap["iv"], n=items, amount=amount)
        if status not in (S.NEW, S.HANDLED_BY_CLIENT):
            ended = status in (S.DEACTIVATED, S.FINISHED) and snap["ed"] is not None
            for p in products:
                add(p, M.STARTED, snap["sd"], n=1)
                if ended:
                    add(p, M.ENDED, snap["ed"], n=1)
    elif kind == K.PURCHASE:
        lines = snap["ln"]
        if snap["pd"]:
            add(ALL, M.REVENUE, snap["pd"], snap["ca"], amount=snap["t"])
            for p, amount in lines.items():
                add(int(p), M.REVENUE, snap["pd"], snap["ca"], amount=amount)
        if snap["ca"] == Purchase.Category.RENEWAL:
            for p in [ALL, *map(int, lines)]:
                add(p, M.RENEWAL_DUE, snap["cd"], n=1)
                if snap["pd"]:
                    add(p, M.RENEWAL_PAID, snap["cd"], n=1)
        if snap["bd"]:
            add(ALL, M.CHARGEBACK, snap["bd"], n=1, amount=snap["t"])
    elif kind == K.DOCUMENT:
        add(ALL, M.REFUND, snap["id"], n=1, amount=snap["t"])


# --- writing --------------------------------------------------------------------------------

ADD = """
INSERT INTO subscriptions_rollup (client_id, currency, product_id, metric, day, dim, n, amount)
VALUES {rows}
ON CONFLICT (client_id, currency, product_id, metric, day, dim) DO UPDATE
SET n = subscriptions_rollup.n + excluded.n, amount = subscriptions_rollup.amount + excluded.amount
"""
ROW = "(" + ", ".join(["%s"] * 8) + ")"


def _add_figures(client_id: int, figures: Figures) -> None:
    """Add the figures to the rollups: one upsert statement per 1,000 rows."""
    rows = [
        (client_id, c, p, m, day, dim, n, amount)
        for (c, p, m, day, dim), (n, amount) in figures.items()
        if n or amount
    ]
    with connection.cursor() as cursor:
        for part in chunks(rows, 1000):
            sql = ADD.format(rows=", ".join([ROW] * len(part)))
            cursor.execute(sql, [value for row in part for value in row])


def _add_customers(client_id: int, customers: Customers, figures: Figures) -> None:
    """Apply customer count changes; a count leaving or reaching 0 moves the
    subscriber figure of its currency and product (into ``figures``)."""
    changed = {key: n for key, n in customers.items() if n}
    if not changed:
        return
    current = {
        (c, p, cu): (pk, n)
        for pk, c, p, cu, n in RollupCustomer.objects.filter(
            client_id=client_id, customer_id__any={cu for _, _, cu in changed}
        ).values_list("pk", "currency", "product_id", "customer_id", "n")
    }
    create, update, delete = [], [], []
    for key, delta in changed.items():
        pk, before = current.get(key, (None, 0))
        after = before + delta
        if (before > 0) != (after > 0):
            row = figures.setdefault((key[0], key[1], M.SUBSCRIBERS, NO_DAY, ""), [0, ZERO])
            row[0] += 1 if after > 0 else -1
        if pk is None:
            create.append(
                RollupCustomer(
                    client_id=client_id,
                    currency=key[0],
                    product_id=key[1],
                    customer_id=key[2],
                    n=after,
                )
            )
        elif after == 0:
            delete.append(pk)
        else:
            update.append(RollupCustomer(pk=pk, n=after))
    insert_rows(create)
    update_rows(update, ["n"])
    RollupCustomer.objects.filter(pk__any=delete).delete()


def _lock(client_id: int, *, wait: bool) -> bool:
    """The client's rollup lock (its row, FOR NO KEY UPDATE: inserts and
    updates of its rows take only key-share locks on it, so they never wait)."""
    rows = Client.objects.select_for_update(no_key=True, skip_locked=not wait).filter(pk=client_id)
    return rows.values_list("pk", flat=True).first() is not None


def count_sources(
    client_id: int, sources: dict[str, set[int]], figures: Figures, customers: Customers
) -> None:
    """Count the named sources as they are now against what was counted."""
    for kind, ids in sources.items():
        if not ids:
            continue
        new = SNAPSHOTS[RollupSourceKind(kind)](client_id, ids)
        stored = RollupSource.objects.filter(client_id=client_id, kind=kind, source_id__any=ids)
        old = {sid: (pk, data) for pk, sid, data in stored.values_list("pk", "source_id", "data")}
        # A changed snapshot is replaced: its row deleted, the new one copied in.
        replaced, written = [], []
        for sid in ids:
            pk, before = old.get(sid, (None, None))
            after = new.get(sid)
            if before == after:
                continue
            contributions(kind, before, figures, customers, -1)
            contributions(kind, after, figures, customers, +1)
            if pk is not None:
                replaced.append(pk)
            if after is not None:
                written.append(
                    RollupSource(client_id=client_id, kind=kind, source_id=sid, data=after)
                )
        RollupSource.objects.filter(pk__any=replaced).delete()
        insert_rows(written)


def catch_up_pass(client_id: int, *, limit: int | None = None, wait: bool = False) -> int | None:
    """Count up to ``limit`` of a client's changed sources, in one
    transaction. Returns how many dirty rows it consumed, or None if another
    process holds the client's rollups (``wait=False``)."""
    with transaction.atomic():
        if not _lock(client_id, wait=wait):
            return None
        dirty = list(
            RollupDirty.objects.filter(client_id=client_id)
            .order_by("id")
            .values_list("id", "kind", "source_id")[: limit or PASS_SIZE]
        )
        if not dirty:
            return 0
        sources: dict[str, set[int]] = defaultdict(set)
        for _, kind, source_id in dirty:
            sources[kind].add(source_id)
        figures: Figures = {}
        customers: Customers = {}
        count_sources(client_id, sources, figures, customers)
        _add_customers(client_id, customers, figures)
        _add_figures(client_id, figures)
        # Exactly the rows read: one committed meanwhile stays for the next pass.
        RollupDirty.objects.filter(pk__any=[pk for pk, _, _ in dirty]).delete()
        return len(dirty)


def catch_up(client_id: int, *, max_passes: int | None = None, wait: bool = False) -> bool:
    """Count a client's changes (all, or ``max_passes`` passes). True when
    nothing is left to count."""
    passes = 0
    while max_passes is None or passes < max_passes:
        done = catch_up_pass(client_id, wait=wait)
        if done is None:
            return not pending(client_id)
        if done < PASS_SIZE:
            return True
        passes += 1
    return not pending(client_id)


def pending(client_id: int) -> bool:
    return RollupDirty.objects.filter(client_id=client_id).exists()


def refresh_all() -> list[int]:
    """Every client's changes (the beat job); marks of deleted clients go.
    Returns the clients whose changes were counted."""
    client_ids = set(RollupDirty.objects.values_list("client_id", flat=True).distinct())
    existing = set(Client.objects.filter(pk__in=client_ids).values_list("pk", flat=True))
    RollupDirty.objects.filter(client_id__in=client_ids - existing).delete()
    for client_id in sorted(existing):
        catch_up(client_id)
    return sorted(existing)


# --- rebuild ----------------------------------------------------------------------------------

CHUNK = 5000


def rebuild(client_id: int) -> dict[str, int]:
    """Recompute one client's rollups from the raw tables, in one
    transaction: every subscription, purchase and credit note counted from
    scratch. Changes committed meanwhile leave dirty rows, counted next."""
    counts: dict[str, int] = {}
    with transaction.atomic():
        _lock(client_id, wait=True)
        RollupDirty.objects.filter(client_id=client_id).delete()
        Rollup.objects.filter(client_id=client_id).delete()
        RollupCustomer.objects.filter(client_id=client_id).delete()
        RollupSource.objects.filter(client_id=client_id).delete()
        figures: Figures = {}
        sources: dict[RollupSourceKind, QuerySet[Any]] = {
            K.SUBSCRIPTION: Subscription.objects.all(),
            K.PURCHASE: Purchase.objects.all(),
            K.DOCUMENT: Document.objects.filter(kind=DocumentKind.CREDIT_NOTE),
        }
        for kind, rows_of in sources.items():
            ids = list(
                rows_of.filter(client_id=client_id).order_by("pk").values_list("pk", flat=True)
            )
            counts["Credit note" if kind == K.DOCUMENT else kind.label] = len(ids)
            for chunk in chunks(ids, CHUNK):
                customers: Customers = {}
                count_sources(client_id, {kind: set(chunk)}, figures, customers)
                _add_customers(client_id, customers, figures)
        _add_figures(client_id, figures)
    return counts


# --- reading ---------------------------------------------------------------------------------


def rows(
    client: Client,
    currency: str,
    product_id: int,
    metrics: list[str],
    *,
    since: date | None = None,
    until: date | None = None,
) -> list[tuple[str, date, str, int, Decimal]]:
    """(metric, day, dim, n, amount) of the rollup rows asked for."""
    qs = Rollup.objects.filter(
        client=client, currency=currency, product_id=product_id, metric__in=metrics
    )
    if since is not None:
        qs = qs.filter(day__gte=since)
    if until is not None:
        qs = qs.filter(day__lt=until)
    return list(qs.values_list("metric", "day", "dim", "n", "amount"))


def fresh(client_id: int, *, passes: int = 5) -> bool:
    """Before a report reads: count the client's pending changes if there are
    a few (up to ``passes`` passes), without waiting for another process
    counting them. True when the figures are up to date."""
    if not pending(client_id):
        return True
    return catch_up(client_id, max_passes=passes)
