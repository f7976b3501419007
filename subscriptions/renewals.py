"""The renewal engine (SPEC 5.2): sweeps, and batches that renew in bulk.

A sweep (beat, ``run_renewals`` or a test clock) finds due work per client,
records a ``RenewalRun`` and splits the work into batches of ids. A batch is
safe to run twice and concurrently:

* charges claim their rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` and only
  while still due; the renewal purchase of (subscription, interval) is unique,
  and the gateway key is subscription + interval + attempt, so a crash between
  charging and recording is finished by the next sweep without a second
  charge (see ``services.billing`` for the same three steps on one row);
* plain renewals (card, automatic, no item at its last billing event, no SM 1.0
  manual item) are done set-based: a batch of N costs a constant number of SQL
  statements. Everything else goes through the per-row services, which hold
  the same rules;
* reminders go once per interval (``reminded_interval_no``); dunning moves
  (retries, Grace -> Hold -> Deactivated) use the per-row services.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from commerce import webhooks
from commerce.bulk import insert_rows, update_rows
from commerce.gateway import ChargeRequest, ChargeResult, Outcome, get_gateway
from commerce.models import Client, OutboxNotification, Purchase, PurchaseItem
from customers import emails
from customers.models import CustomerEmail

from . import notifications as n
from . import renewal_sql, services
from .models import (
    HistoryEntry,
    ItemStatus,
    RenewalRun,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from .renewal_sql import Claim

S, IS = SubscriptionStatus, ItemStatus


# --- sweeps ------------------------------------------------------------------------


@dataclass
class Work:
    run: RenewalRun
    kind: str  # charges / reminders / dunning
    ids: list[int]


def start_sweep(
    *, as_of: datetime | None = None, client: Client | None = None, trigger: str = "beat"
) -> list[Work]:
    """Record one RenewalRun per client with due work and return its batches.
    The caller runs them (``run_renewals``) or sends them to workers."""
    clients = [client] if client is not None else list(Client.objects.order_by("pk"))
    work: list[Work] = []
    for one in clients:
        moment = as_of or one.now()  # a sandbox client's test clock
        kinds = {
            kind: list(queryset.order_by("pk").values_list("pk", flat=True))
            for kind, queryset in _due(one, moment).items()
        }
        batches = [(kind, chunk) for kind, ids in kinds.items() for chunk in _chunks(ids)]
        if not batches:
            continue
        run = RenewalRun.objects.create(
            client=one,
            trigger=trigger,
            as_of=moment,
            started_at=timezone.now(),
            batches_total=len(batches),
            due=len(kinds["charges"]),
        )
        work += [Work(run, kind, ids) for kind, ids in batches]
    return work


def _due(client: Client, as_of: datetime) -> dict[str, Any]:
    """What is due for one client, by its own settings, so a sweep touches
    only rows with work to do."""
    scope = Subscription.objects.scheduled().filter(client=client)
    product_days = client.products.aggregate(days=Max("reminder_days"))["days"] or 0
    remind_within = timedelta(days=max(client.reminder_days, product_days))
    first_dunning_step = timedelta(days=min([*client.retry_days(), client.grace_period_days]))
    return {
        "charges": scope.filter(status=S.ACTIVE, next_billing_date__lte=as_of),
        "reminders": scope.filter(
            status=S.ACTIVE,
            next_billing_date__gt=as_of,
            next_billing_date__lte=as_of + remind_within,
            reminded_interval_no__lte=F("last_interval_no"),
        ),
        "dunning": scope.filter(
            Q(status=S.GRACE, status_changed_at__lte=as_of - first_dunning_step)
            | Q(status=S.HOLD, status_changed_at__lte=as_of - timedelta(days=client.hold_days))
        ),
    }


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    size = settings.RENEWAL_BATCH_SIZE
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


@dataclass
class BatchOutcome:
    counts: Counter[str]
    retry_ids: list[int]  # transient gateway errors: try these again later


def run_batch(kind: str, ids: list[int], *, as_of: datetime) -> BatchOutcome:
    if kind == "charges":
        return charge_batch(ids, as_of=as_of)
    process = {"reminders": remind_batch, "dunning": dunning_batch}[kind]
    return BatchOutcome(process(ids, as_of=as_of), [])


def retry_later(run_id: int) -> None:
    """A batch of transient failures goes round again: one more batch to wait for."""
    RenewalRun.objects.filter(pk=run_id).update(batches_total=F("batches_total") + 1)


@transaction.atomic
def finish_batch(run_id: int, counts: Counter[str]) -> None:
    """Add a batch's counts; the last batch closes the run (conditional update)."""
    RenewalRun.objects.filter(pk=run_id).update(
        batches_done=F("batches_done") + 1,
        charged=F("charged") + counts["charged"],
        declined=F("declined") + counts["declined"],
        skipped=F("skipped") + counts["skipped"],
        errors=F("errors") + counts["error"],
        reminders=F("reminders") + counts["reminded"],
        dunning=F("dunning") + counts["dunning"],
    )
    RenewalRun.objects.filter(
        pk=run_id, batches_done__gte=F("batches_total"), status=RenewalRun.Status.RUNNING
    ).update(status=RenewalRun.Status.FINISHED, finished_at=timezone.now())


# --- charges ----------------------------------------------------------------------------


def charge_batch(ids: list[int], *, as_of: datetime) -> BatchOutcome:
    """Renew the due subscriptions among ``ids``. Counts by outcome:
    ``charged``, ``declined``, ``error``, ``skipped``, ``dunning``."""
    counts: Counter[str] = Counter()
    retry: list[int] = []
    set_based = connection.vendor == "postgresql" and settings.RENEWAL_SET_BASED
    claims, special = (_claim_sql if set_based else _claim)(ids, as_of=as_of)
    counts["skipped"] += len(ids) - len(claims) - len(special)
    for sub in Subscription.objects.filter(pk__in=special).order_by("pk"):
        outcome = services.renew_due(subscription=sub, at=as_of)
        counts[
            {"finished": "skipped", "manual": "dunning", "invoiced": "dunning"}.get(
                outcome, outcome
            )
        ] += 1
        if outcome == "error":
            retry.append(sub.pk)
    if claims:
        results = get_gateway().charge_many(
            [ChargeRequest(c.amount, c.currency, c.payment_method, c.key) for c in claims]
        )
        retry += _record(claims, results, as_of=as_of, counts=counts, set_based=set_based)
    return BatchOutcome(counts, retry)


def _claim_sql(ids: list[int], *, as_of: datetime) -> tuple[list[Claim], list[int]]:
    """Step 1 on PostgreSQL, set-based (``renewal_sql``).

    The claim commits without waiting for its WAL flush (``synchronous_commit
    off``): losing it in a crash loses only pending purchases, and a claim
    made again charges with the same gateway key (attempt 1), which the
    gateway answers from its ledger. Whatever follows it (the ledger row, the
    recorded charge) commits synchronously, which flushes the claim too."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        return renewal_sql.claim(ids, as_of=as_of)


def _claim(ids: list[int], *, as_of: datetime) -> tuple[list[Claim], list[int]]:
    """Step 1: lock what is still due (skipping rows another worker holds),
    and open one pending renewal purchase per (subscription, interval).
    Returns the plain renewals and the ids of the others."""
    with transaction.atomic():
        subs = list(
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids, status=S.ACTIVE, next_billing_date__lte=as_of)
            .select_related("client", "customer", "payment_method")
            .order_by("pk")
        )
        items = _items_by_sub(subs)
        open_purchases = {
            (p.subscription_id, p.interval_no): p
            for p in Purchase.objects.filter(
                category=Purchase.Category.RENEWAL,
                subscription__in=subs,
                interval_no__gt=min((s.last_interval_no for s in subs), default=0),
            )
        }
        plain: list[tuple[Subscription, Purchase | None]] = []
        special: list[int] = []
        for sub in subs:
            existing = open_purchases.get((sub.pk, sub.last_interval_no + 1))
            if _is_plain(sub, items[sub.pk]) and (
                existing is None or existing.status == Purchase.Status.PENDING
            ):
                plain.append((sub, existing))
            else:
                special.append(sub.pk)
        claims = _open_purchases(plain, items, as_of=as_of)
    return claims, special


def _items_by_sub(subs: list[Subscription]) -> dict[int, list[SubscriptionItem]]:
    grouped: dict[int, list[SubscriptionItem]] = {sub.pk: [] for sub in subs}
    for item in (
        SubscriptionItem.objects.filter(subscription__in=subs)
        .select_related("product")
        .order_by("subscription_id", "running_no")
    ):
        grouped[item.subscription_id].append(item)
    return grouped


def _is_plain(sub: Subscription, items: list[SubscriptionItem]) -> bool:
    active = [i for i in items if i.status == IS.ACTIVE]
    return (
        bool(active)
        and sub.payment_method.is_online
        and sub.renewal_type != "Manual"
        and not any(i.billing_events_done for i in active)
        and not (
            sub.sm_version == "1.0" and any(i.product.renewal_mode == "manual" for i in active)
        )
    )


def _open_purchases(
    plain: list[tuple[Subscription, Purchase | None]],
    items: dict[int, list[SubscriptionItem]],
    *,
    as_of: datetime,
) -> list[Claim]:
    active = {sub.pk: [i for i in items[sub.pk] if i.status == IS.ACTIVE] for sub, _ in plain}
    new = [
        Purchase(
            client_id=sub.client_id,
            customer_id=sub.customer_id,
            subscription=sub,
            category=Purchase.Category.RENEWAL,
            status=Purchase.Status.PENDING,
            interval_no=sub.last_interval_no + 1,
            currency=sub.currency,
            total=sub.billing_amount(active[sub.pk]),
            payment_method_id=sub.payment_method_id,
            created_at=as_of,
        )
        for sub, existing in plain
        if existing is None
    ]
    insert_rows(new, returning_ids=True)
    insert_rows(
        [
            PurchaseItem(
                purchase=purchase,
                running_no=no,
                product_id=item.product_id,
                quantity=item.quantity,
                unit_price=item.unit_price,
                amount=item.line_amount,
                subscription_item=item,
                interval_no=purchase.interval_no,
            )
            for purchase in new
            for no, item in enumerate(active[purchase.subscription_id or 0], start=1)
        ]
    )
    created = iter(new)
    claims = []
    for sub, existing in plain:
        purchase = existing or next(created)
        claims.append(
            Claim(
                sub.pk,
                purchase.pk,
                purchase.interval_no or sub.last_interval_no + 1,
                purchase.charge_attempts,
                purchase.total,
                purchase.currency,
                sub.payment_method,
            )
        )
    return claims


def _record(
    claims: list[Claim],
    results: list[ChargeResult],
    *,
    as_of: datetime,
    counts: Counter[str],
    set_based: bool = False,
) -> list[int]:
    """Step 3: record every answer with its state change, in bulk. Returns
    the subscriptions whose charge hit a transient error. ``set_based``:
    approved charges are recorded in SQL (``renewal_sql.record_paid``)."""
    with transaction.atomic():
        if set_based:
            approved = [
                (c.purchase_id, r.reference)
                for c, r in zip(claims, results, strict=True)
                if r.approved
            ]
            charged = renewal_sql.record_paid(approved, at=as_of)
            counts["charged"] += charged
            counts["skipped"] += len(approved) - charged
            pairs = [(c, r) for c, r in zip(claims, results, strict=True) if not r.approved]
        else:
            pairs = list(zip(claims, results, strict=True))
        if not pairs:
            return []
        locked = {
            p.pk: p
            for p in Purchase.objects.select_for_update().filter(
                pk__in=[c.purchase_id for c, _ in pairs]
            )
        }
        subs = {
            s.pk: s
            for s in Subscription.objects.select_for_update(of=("self",))
            .filter(pk__in=[c.sub_id for c, _ in pairs])
            .select_related("client", "customer")
        }
        fresh_items = _items_by_sub(list(subs.values()))
        out = _Outputs(as_of)
        out.load_lines(locked.values())
        for claim, result in pairs:
            purchase, sub = locked[claim.purchase_id], subs[claim.sub_id]
            if purchase.status != Purchase.Status.PENDING:
                counts["skipped"] += 1  # a concurrent batch recorded this charge
                continue
            purchase.charge_attempts += 1
            outcome = _apply(result, purchase, sub, fresh_items[sub.pk], out)
            counts[outcome] += 1
            if outcome == "error":
                out.error_ids.append(sub.pk)
        out.save(list(locked.values()), list(subs.values()))
    return out.error_ids


def _apply(
    result: ChargeResult,
    purchase: Purchase,
    sub: Subscription,
    items: list[SubscriptionItem],
    out: _Outputs,
) -> str:
    at = out.at
    before = sub.snapshot(items)
    if result.outcome == Outcome.ERROR:
        purchase.status, purchase.decline_reason = Purchase.Status.FAILED, result.message
        return "error"
    if result.outcome == Outcome.DECLINED:
        purchase.status, purchase.decline_reason = Purchase.Status.DECLINED, result.message
        if sub.status != S.ACTIVE:
            return "declined"
        code, note = _dunning_status(sub, items, at)
        out.change(
            sub,
            items,
            before,
            code,
            note,
            f"Renewal charge declined: {result.message} Subscription {sub.status}.",
            purchase=None,
        )
        return "declined"
    purchase.status, purchase.paid_at = Purchase.Status.PAID, at
    purchase.gateway_reference = result.reference
    sub.last_interval_no = purchase.interval_no or sub.last_interval_no + 1
    sub.next_billing_date = sub.billing_date_of(sub.last_interval_no + 1)
    charged = set(out.charged_items_of(purchase))
    for item in items:
        if item.pk in charged:
            item.last_interval_no += 1
            out.item_ids.append(item.pk)
    out.change(
        sub,
        items,
        before,
        "renewed",
        n.PAID_ORDER,
        f"Renewed: interval {sub.last_interval_no} paid ({purchase.total} "
        f"{purchase.currency}, purchase {purchase.pk}); next billing date "
        f"{sub.next_billing_date:%Y-%m-%d}.",
        purchase=purchase,
    )
    return "charged"


def _dunning_status(
    sub: Subscription, items: list[SubscriptionItem], at: datetime
) -> tuple[str, str]:
    client = sub.client
    if client.grace_period_days > 0:
        sub.set_status(S.GRACE, at=at)
        return "grace", n.ON_GRACE
    if client.hold_days > 0:
        sub.set_status(S.HOLD, at=at)
        return "hold", n.ON_HOLD
    for item in items:
        if item.status in (IS.ACTIVE, IS.AWAITING_REINSTATE):
            item.set_status(IS.DEACTIVATED, at=at)
    sub.set_status(S.DEACTIVATED, at=at)
    return "deactivate", n.BILLING_CANCELED


class _Outputs:
    """Rows a batch writes, collected and then saved with one statement each."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.history: list[HistoryEntry] = []
        self.outbox: list[OutboxNotification] = []
        self.emails: list[CustomerEmail] = []
        self.item_ids: list[int] = []
        self.changed_items: list[SubscriptionItem] = []
        self.error_ids: list[int] = []
        self._purchase_items: dict[int, list[PurchaseItem]] = {}

    def charged_items_of(self, purchase: Purchase) -> list[int]:
        return [
            pi.subscription_item_id
            for pi in self._lines(purchase)
            if pi.subscription_item_id is not None
        ]

    def _lines(self, purchase: Purchase) -> list[PurchaseItem]:
        return self._purchase_items.get(purchase.pk, [])

    def load_lines(self, purchases: Iterable[Purchase]) -> None:
        for line in PurchaseItem.objects.filter(purchase__in=list(purchases)).order_by(
            "purchase_id", "running_no"
        ):
            self._purchase_items.setdefault(line.purchase_id, []).append(line)

    def change(
        self,
        sub: Subscription,
        items: list[SubscriptionItem],
        before: dict[str, Any],
        code: str,
        notification: str,
        summary: str,
        *,
        purchase: Purchase | None,
    ) -> None:
        after = sub.snapshot(items)
        changed = [k for k in after if after[k] != before.get(k)]
        sub.row_version += 1
        self.changed_items += [i for i in items if i.status != before["items"][str(i.running_no)]]
        self.history.append(
            HistoryEntry(
                client_id=sub.client_id,
                subscription=sub,
                created_at=self.at,
                actor_kind=HistoryEntry.ActorKind.SYSTEM,
                actor_label="system",
                event_code=code,
                summary=summary,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
        )
        payload = (
            n.purchase_payload(purchase, [(sub, items)], code, lines=self._lines(purchase))
            if purchase
            else n.subscription_payload(sub, items)
        )
        self.outbox.append(
            OutboxNotification(
                client_id=sub.client_id,
                type=notification,
                payload=payload,
                subscription=sub,
                purchase=purchase,
                created_at=self.at,
            )
        )
        kind = emails.KIND_FOR_NOTIFICATION.get(notification)
        if kind:
            self.emails.append(
                emails.build(
                    kind, subscription=sub, purchase=purchase, at=self.at, notification=notification
                )
            )

    def save(self, purchases: list[Purchase], subs: list[Subscription]) -> None:
        update_rows(
            purchases,
            ["status", "paid_at", "gateway_reference", "charge_attempts", "decline_reason"],
        )
        update_rows(
            subs,
            [
                "status",
                "status_changed_at",
                "end_date",
                "last_interval_no",
                "next_billing_date",
                "row_version",
            ],
        )
        if self.item_ids:
            SubscriptionItem.objects.filter(pk__in=self.item_ids).update(
                last_interval_no=F("last_interval_no") + 1
            )
        if self.changed_items:
            update_rows(self.changed_items, ["status", "deactivation_date", "end_date"])
        insert_rows(self.history)
        insert_rows(self.outbox)
        if self.outbox:
            webhooks.deliver_after_commit()
        if self.emails:
            insert_rows(self.emails)
            emails.deliver_after_commit()


# --- reminders and dunning -----------------------------------------------------------


def remind_batch(ids: list[int], *, as_of: datetime) -> Counter[str]:
    """Reminder e-mail and notification once per interval, ``reminder_days``
    before the billing date (product setting, else the client's)."""
    counts: Counter[str] = Counter()
    with transaction.atomic():
        subs = list(
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                pk__in=ids,
                status=S.ACTIVE,
                next_billing_date__gt=as_of,
                reminded_interval_no__lte=F("last_interval_no"),
            )
            .select_related("client", "customer", "payment_method")
        )
        items = _items_by_sub(subs)
        out = _Outputs(as_of)
        due = []
        for sub in subs:
            if sub.reminder_date(items[sub.pk]) > as_of:
                continue
            sub.reminded_interval_no = sub.last_interval_no + 1
            due.append(sub)
            notification = _reminder_type(sub)
            out.outbox.append(
                OutboxNotification(
                    client_id=sub.client_id,
                    type=notification,
                    payload=n.subscription_payload(sub, items[sub.pk]),
                    subscription=sub,
                    created_at=as_of,
                )
            )
            out.emails.append(
                emails.build(
                    "reminder", subscription=sub, purchase=None, at=as_of, notification=notification
                )
            )
        update_rows(due, ["reminded_interval_no"])
        insert_rows(out.outbox)
        if out.outbox:
            webhooks.deliver_after_commit()
        if out.emails:
            insert_rows(out.emails)
            emails.deliver_after_commit()
        counts["reminded"] += len(due)
    return counts


def _reminder_type(sub: Subscription) -> str:
    method = sub.payment_method
    if not method.is_online:
        return n.REMINDER_OFFLINE
    expiry = (method.expiry_year or 0, method.expiry_month or 0)
    if expiry < (sub.next_billing_date.year, sub.next_billing_date.month):
        return n.REMINDER_CARD_EXPIRING
    return n.REMINDER_CHARGE


def dunning_batch(ids: list[int], *, as_of: datetime) -> Counter[str]:
    """Retries on the client's retry days of grace, then Grace -> Hold ->
    Deactivated as the days run out (per row, through the services)."""
    counts: Counter[str] = Counter()
    subs = list(
        Subscription.objects.filter(pk__in=ids, status__in=[S.GRACE, S.HOLD]).select_related(
            "client", "payment_method"
        )
    )
    attempts = _renewal_attempts(subs)
    for sub in subs:
        if _retry_due(sub, attempts.get(sub.pk), as_of):
            outcome = services.pay_overdue(subscription=sub, actor=services.SYSTEM, at=as_of)
            if outcome.status == "Success":
                counts["charged"] += 1
                continue
        if services.advance_dunning(subscription=sub, at=as_of):
            counts["dunning"] += 1
    return counts


def _renewal_attempts(subs: list[Subscription]) -> dict[int, int]:
    """Charge attempts of each subscription's unpaid renewal, in one query."""
    rows = Purchase.objects.filter(
        category=Purchase.Category.RENEWAL, subscription__in=subs
    ).values_list("subscription_id", "interval_no", "charge_attempts")
    due = {sub.pk: sub.last_interval_no + 1 for sub in subs}
    return {sub_id: tries for sub_id, interval_no, tries in rows if due[sub_id] == interval_no}


def _retry_due(sub: Subscription, attempts: int | None, as_of: datetime) -> bool:
    if sub.status != S.GRACE or not sub.payment_method.is_online:
        return False
    if attempts is None:
        return False  # SM 2.0 manual: no renewal purchase; the customer renews, we do not charge
    retries_done = max(attempts - 1, 0)
    schedule = sub.client.retry_days()
    if retries_done >= len(schedule):
        return False
    return as_of >= sub.status_changed_at + timedelta(days=schedule[retries_done])
