"""The renewal engine (docs/renewals.md): sweeps, and batches of ids.

A sweep (beat, ``run_renewals`` or a test clock) finds due work per client,
records a ``RenewalRun`` and splits the work into batches of ids. A batch is
safe to run twice and concurrently. The rules are the lifecycle services'
(``services.billing``); a batch only decides how to call them:

* charges: each due subscription goes through ``services.renew_due``. On
  PostgreSQL the plain paid renewals among them (``services.is_plain_renewal``)
  are claimed, charged and recorded a batch at a time (``renewal_sql``), with
  the values the services compute; declines, errors and everything else
  still go through the per-row services;
* reminders go once per interval (``reminded_interval_no``);
* dunning (retries, Grace -> Hold -> Deactivated) through the per-row services.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from commerce.bulk import chunks, update_rows
from commerce.gateway import Answers, ChargeResult, get_gateway
from commerce.models import Client, Purchase, SMVersion
from customers.models import CustomerEmail

from . import renewal_sql, services
from .errors import ConcurrentChange
from .models import (
    ItemStatus,
    RenewalBatch,
    RenewalRun,
    RenewalType,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
    WorkKind,
)
from .notifications import outbox
from .notifications.payloads import subscription_payload
from .notifications.types import NotificationType
from .services.billing import RENEWAL_OUTCOME

S, N = SubscriptionStatus, NotificationType
R, T = services.RenewalOutcome, services.TransactionStatus


# --- sweeps ------------------------------------------------------------------------


def start_sweep(
    *, as_of: datetime | None = None, client: Client | None = None, trigger: str = "beat"
) -> list[RenewalBatch]:
    """Record one RenewalRun per client with due work, with its batches, and
    return the batches. The caller runs them (``run_renewals``) or sends them
    to workers."""
    clients = [client] if client is not None else list(Client.objects.order_by("pk"))
    work: list[RenewalBatch] = []
    for one in clients:
        moment = as_of or one.now()  # a sandbox client's test clock
        reconcile(one, at=moment)
        kinds = {
            kind: list(queryset.order_by("pk").values_list("pk", flat=True))
            for kind, queryset in _due(one, moment).items()
        }
        size = settings.RENEWAL_BATCH_SIZE
        parts = [(kind, part) for kind, ids in kinds.items() for part in chunks(ids, size)]
        if not parts:
            continue
        now = timezone.now()
        with transaction.atomic():
            run = RenewalRun.objects.create(
                client=one,
                trigger=trigger,
                as_of=moment,
                started_at=now,
                progress_at=now,
                batches_total=len(parts),
                due=len(kinds[WorkKind.CHARGES]),
            )
            batches = RenewalBatch.objects.bulk_create(
                RenewalBatch(run=run, kind=kind, ids=ids, sent_at=now) for kind, ids in parts
            )
        work += batches
    return work


# A renewal purchase still pending this long after its batch opened it was
# left by a worker that died between charging and recording.
RECONCILE_AFTER = timedelta(minutes=2)


def reconcile(client: Client, *, at: datetime) -> Counter[str]:
    """Before a sweep: every approved charge nobody recorded is recorded, or
    refunded if it can no longer be applied (``services.reconcile_charge``)."""
    counts: Counter[str] = Counter()
    left = Purchase.objects.filter(
        client=client,
        category=Purchase.Category.RENEWAL,
        status=Purchase.Status.PENDING,
        created_at__lte=at - RECONCILE_AFTER,
    ).values_list("pk", flat=True)
    for pk in list(left):
        outcome = services.reconcile_charge(pk, at=at)
        if outcome is not None:
            counts[outcome] += 1
    return counts


def _due(client: Client, as_of: datetime) -> dict[WorkKind, Any]:
    """What is due for one client, by its own settings, so a sweep touches
    only rows with work to do."""
    scope = Subscription.objects.scheduled().filter(client=client)
    product_days = client.products.aggregate(days=Max("reminder_days"))["days"] or 0
    remind_within = timedelta(days=max(client.reminder_days, product_days))
    first_dunning_step = timedelta(days=min([*client.retry_days(), client.grace_period_days]))
    return {
        WorkKind.CHARGES: scope.filter(status=S.ACTIVE, next_billing_date__lte=as_of),
        WorkKind.REMINDERS: scope.filter(
            remindable(),
            next_billing_date__gt=as_of,
            next_billing_date__lte=as_of + remind_within,
            reminded_interval_no__lte=F("last_interval_no"),
        ),
        WorkKind.DUNNING: scope.filter(
            Q(status=S.GRACE, status_changed_at__lte=as_of - first_dunning_step)
            | Q(status=S.HOLD, status_changed_at__lte=as_of - timedelta(days=client.hold_days))
        ),
    }


def remindable() -> Q:
    """Who gets a renewal reminder before the billing date: Active
    subscriptions, and SM 1.0 ones waiting for the customer to confirm
    (Deactivated with an item AwaitingReinstate)."""
    awaiting = SubscriptionItem.objects.filter(
        subscription=OuterRef("pk"), status=ItemStatus.AWAITING_REINSTATE
    )
    return Q(status=S.ACTIVE) | Q(Exists(awaiting), status=S.DEACTIVATED, sm_version=SMVersion.V1)


@dataclass
class BatchOutcome:
    counts: Counter[str]
    retry_ids: list[int]  # transient gateway errors: try these again later


def run_batch(kind: str, ids: list[int], *, as_of: datetime) -> BatchOutcome:
    if kind == WorkKind.CHARGES:
        return charge_batch(ids, as_of=as_of)
    process = {WorkKind.REMINDERS: remind_batch, WorkKind.DUNNING: dunning_batch}[WorkKind(kind)]
    return BatchOutcome(process(ids, as_of=as_of), [])


def run_in_process(batch: RenewalBatch) -> BatchOutcome:
    """Run one batch in this process and finish it (the command, test
    clocks): no retries of transient errors — the next sweep has them."""
    outcome = run_batch(batch.kind, batch.ids, as_of=batch.run.as_of)
    finish_batch(batch.pk, outcome.counts)
    return outcome


@transaction.atomic
def finish_batch(batch_id: int, counts: Counter[str], *, retry: RenewalBatch | None = None) -> bool:
    """Add a batch's counts to its run, once: a batch delivered twice (or a
    re-sent stalled one) counts once. ``retry``: a batch of transient errors
    to run later, recorded with it. The last batch closes the run. False if
    the batch was already finished."""
    now = timezone.now()
    batch = RenewalBatch.objects.select_for_update().get(pk=batch_id)
    if batch.done_at is not None:
        return False
    batch.done_at = now
    batch.save(update_fields=["done_at"])
    if retry is not None:
        retry.save()
    RenewalRun.objects.filter(pk=batch.run_id).update(
        batches_done=F("batches_done") + 1,
        batches_total=F("batches_total") + (0 if retry is None else 1),
        progress_at=now,
        charged=F("charged") + counts["charged"],
        declined=F("declined") + counts["declined"],
        skipped=F("skipped") + counts["skipped"],
        errors=F("errors") + counts["error"],
        reminders=F("reminders") + counts["reminded"],
        dunning=F("dunning") + counts["dunning"],
    )
    close_if_done(batch.run_id)
    return True


def retry_batch(batch: RenewalBatch, ids: list[int], *, due_at: datetime) -> RenewalBatch:
    """The batch that tries ``ids`` (transient gateway errors) again at ``due_at``."""
    return RenewalBatch(
        run_id=batch.run_id, kind=batch.kind, ids=ids, attempt=batch.attempt + 1, sent_at=due_at
    )


def close_if_done(run_id: int) -> bool:
    """Finish a running run none of whose batches is still out."""
    out = RenewalBatch.objects.filter(run=OuterRef("pk"), done_at__isnull=True)
    return bool(
        RenewalRun.objects.filter(pk=run_id, status=RenewalRun.Status.RUNNING)
        .exclude(Exists(out))
        .update(status=RenewalRun.Status.FINISHED, finished_at=timezone.now())
    )


def stalled_batches(*, now: datetime | None = None) -> list[RenewalBatch]:
    """Unfinished batches of runs that made no progress for
    ``RENEWAL_STALL_AFTER`` seconds, each sent (or due) at least that long
    ago, marked as sent again now; the run records the resume. The caller
    sends them after commit. Runs left with nothing out are closed."""
    now = now or timezone.now()
    quiet = now - timedelta(seconds=settings.RENEWAL_STALL_AFTER)
    resent: list[RenewalBatch] = []
    running = RenewalRun.objects.filter(status=RenewalRun.Status.RUNNING, progress_at__lte=quiet)
    for run_id in list(running.values_list("pk", flat=True)):
        with transaction.atomic():
            run = (
                RenewalRun.objects.select_for_update(skip_locked=True)
                .filter(pk=run_id, status=RenewalRun.Status.RUNNING, progress_at__lte=quiet)
                .first()
            )
            if run is None:
                continue  # finished, progressed, or another watcher has it
            batches = list(
                RenewalBatch.objects.select_for_update()
                .filter(run=run, done_at__isnull=True, sent_at__lte=quiet)
                .select_related("run")
            )
            if not batches:
                close_if_done(run.pk)
                continue
            RenewalBatch.objects.filter(pk__in=[b.pk for b in batches]).update(
                sent_at=now, sends=F("sends") + 1
            )
            run.resumed_at = run.progress_at = now
            run.resumes += 1
            run.save(update_fields=["resumed_at", "progress_at", "resumes"])
            resent += batches
    return resent


# --- charges ----------------------------------------------------------------------------

# How a batch counts what ``services.renew_due`` did.
COUNTED_AS = {
    R.SKIPPED: "skipped",
    R.FINISHED: "skipped",
    R.MANUAL: "dunning",
    R.INVOICED: "dunning",
    R.CHARGED: "charged",
    R.DECLINED: "declined",
    R.ERROR: "error",
}


def set_based() -> bool:
    """Plain paid renewals a batch at a time (``renewal_sql``): on PostgreSQL,
    unless ``RENEWAL_SET_BASED=false``."""
    return connection.vendor == "postgresql" and settings.RENEWAL_SET_BASED


def charge_batch(ids: list[int], *, as_of: datetime) -> BatchOutcome:
    """Renew the due subscriptions among ``ids``. Counts by outcome:
    ``charged``, ``declined``, ``error``, ``skipped``, ``dunning``.

    Set-based, the batch is claimed in parts (``growing_parts``), each
    part's charges sent as soon as it is claimed (``send_many``), so the
    gateway's latency passes while the next parts are claimed and the
    batch's other subscriptions are renewed one by one; then the answers are
    recorded as they come: the oldest part's, with every later part whose
    answers are already in, in one transaction."""
    if not set_based():
        return renew_each(ids, as_of=as_of)
    gateway = get_gateway()
    sent: deque[tuple[list[renewal_sql.Claim], Answers]] = deque()
    special: list[int] = []
    known = renewal_sql.Known()
    for part in growing_parts(ids, settings.RENEWAL_CLAIM_CHUNK):
        claims, others = renewal_sql.claim(part, as_of=as_of, known=known)
        special += others
        if claims:
            sent.append((claims, gateway.send_many([c.request for c in claims])))
    claimed = sum(len(claims) for claims, _ in sent)
    # The others (per row) while the charges are on the network.
    outcome = renew_each(special, as_of=as_of)
    outcome.counts["skipped"] += len(ids) - claimed - len(special)  # not due, or another's
    while sent:
        group = [sent.popleft()]
        while sent and sent[0][1].ready():
            group.append(sent.popleft())
        # Whatever collecting writes (the test gateway's ledger) commits once
        # for the group, before the recording.
        with transaction.atomic():
            answered = [
                pair for claims, answers in group for pair in zip(claims, answers(), strict=True)
            ]
        _record(answered, as_of, outcome)
    return outcome


def growing_parts(ids: list[int], first: int) -> Iterator[list[int]]:
    """``ids`` in parts of ``first``, then twice as many each time: the first
    charges leave early, and each later part is claimed while the earlier
    ones are on the network (fewer claims per batch than equal parts)."""
    start, size = 0, max(first, 1)
    while start < len(ids):
        yield ids[start : start + size]
        start, size = start + size, size * 2


def _record(
    answered: list[tuple[renewal_sql.Claim, ChargeResult]], as_of: datetime, outcome: BatchOutcome
) -> None:
    """Record the answers to claimed charges: the approved ones set-based
    (one transaction); declines, errors, and approved charges whose
    subscription changed since the claim one at a time by the services."""
    counts = outcome.counts
    with transaction.atomic():
        recorded = renewal_sql.record_paid([(c, r) for c, r in answered if r.approved], at=as_of)
    counts["charged"] += recorded.charged
    counts["skipped"] += recorded.skipped
    for claim, result in recorded.stale + [(c, r) for c, r in answered if not r.approved]:
        charge = services.record_charge(
            claim.purchase.pk,
            result,
            actor=services.SYSTEM,
            at=as_of,
            dates=services.NextDates.SCHEDULE,
            on_decline=services.OnDecline.DUNNING,
        )
        if not charge.recorded:
            counts["skipped"] += 1
            continue
        renewal = RENEWAL_OUTCOME[charge.status]
        counts[COUNTED_AS[renewal]] += 1
        if renewal == R.ERROR:
            outcome.retry_ids.append(claim.sub.pk)


def renew_each(ids: list[int], *, as_of: datetime) -> BatchOutcome:
    """``services.renew_due`` for each subscription, one at a time."""
    counts: Counter[str] = Counter()
    retry: list[int] = []
    for sub in Subscription.objects.filter(pk__in=ids).order_by("pk"):
        renewal = services.renew_due(subscription=sub, at=as_of)
        counts[COUNTED_AS[renewal]] += 1
        if renewal == R.ERROR:
            retry.append(sub.pk)
    return BatchOutcome(counts, retry)


# --- reminders and dunning -----------------------------------------------------------


def remind_batch(ids: list[int], *, as_of: datetime) -> Counter[str]:
    """Reminder e-mail and notification once per interval, ``reminder_days``
    before the billing date (product setting, else the client's)."""
    counts: Counter[str] = Counter()
    with transaction.atomic():
        subs = list(
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                remindable(),
                pk__in=ids,
                next_billing_date__gt=as_of,
                reminded_interval_no__lte=F("last_interval_no"),
            )
            .select_related("client", "customer", "payment_method")
        )
        items = renewal_sql.items_by_subscription(subs)
        rows, mails, due = [], [], []
        for sub in subs:
            if sub.reminder_date(items[sub.pk]) > as_of:
                continue
            sub.reminded_interval_no = sub.last_interval_no + 1
            due.append(sub)
            notification = _reminder_type(sub)
            rows.append(
                outbox.outbox_row(
                    notification,
                    client_id=sub.client_id,
                    payload=subscription_payload(sub, items[sub.pk]),
                    at=as_of,
                    subscription=sub,
                )
            )
            invite = services.renewed_by_customer(sub, items[sub.pk])
            mail = outbox.email_for(
                notification,
                subscription=sub,
                purchase=None,
                at=as_of,
                kind=CustomerEmail.Kind.INVITATION if invite else None,
            )
            if mail is not None:
                mails.append(mail)
        update_rows(due, ["reminded_interval_no"])
        outbox.write(rows, mails)
        counts["reminded"] += len(due)
    return counts


def _reminder_type(sub: Subscription) -> NotificationType:
    method = sub.payment_method
    if not method.is_online:
        return N.REMINDER_OFFLINE
    expiry = (method.expiry_year or 0, method.expiry_month or 0)
    if expiry < (sub.next_billing_date.year, sub.next_billing_date.month):
        return N.REMINDER_CARD_EXPIRING
    return N.REMINDER_CHARGE


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
            try:
                outcome = services.pay_overdue(subscription=sub, actor=services.SYSTEM, at=as_of)
            except ConcurrentChange:
                continue  # paid or changed meanwhile (another sweep, staff, the customer)
            if outcome.status == T.SUCCESS and outcome.recorded:
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
    """A declined renewal is charged again on the client's retry days of
    grace — never a Manual one (switched to Manual in Grace, its retries stop;
    switched back to Automatic, they resume on the same days)."""
    if sub.status != S.GRACE or not sub.payment_method.is_online:
        return False
    if sub.renewal_type == RenewalType.MANUAL:
        return False
    if attempts is None:
        return False  # SM 2.0 manual: no renewal purchase; the customer renews, we do not charge
    retries_done = max(attempts - 1, 0)
    schedule = sub.client.retry_days()
    if retries_done >= len(schedule):
        return False
    return as_of >= sub.status_changed_at + timedelta(days=schedule[retries_done])
