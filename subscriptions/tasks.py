"""Celery tasks of the renewal engine: each takes ids and calls one service."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from commerce import clock, locks
from commerce.models import Client

from . import renewals, rollups
from .models import RenewalBatch

TRANSIENT_RETRIES = 3
RETRY_BASE_SECONDS = 30


@shared_task
def sweep(client_id: int | None = None, trigger: str = "beat", as_of: str | None = None) -> int:
    """Find due work and fan it out in batches. Without a client (beat), one
    sweep task per client, so that clients are swept in parallel and the
    first batches start while later clients are still being swept. Returns
    the number of tasks sent."""
    if client_id is None:
        now = timezone.now()
        clients = list(
            Client.objects.order_by("pk").values_list("pk", "is_sandbox", "clock_offset")
        )
        for pk, sandbox, offset in clients:
            moment = now + offset if sandbox else now  # a sandbox client's test clock
            sweep.delay(client_id=pk, trigger=trigger, as_of=moment.isoformat())
        return len(clients)
    client = Client.objects.get(pk=client_id)
    work = renewals.start_sweep(
        client=client, trigger=trigger, as_of=_when(as_of) if as_of else None
    )
    for batch in work:
        _send(batch.pk)
    return len(work)


def _send(batch_id: int, countdown: float = 0) -> None:
    """Send a batch once the transaction that recorded it commits. If the
    broker is down it stays unsent, and ``resume_stalled`` sends it later."""
    transaction.on_commit(
        lambda: process_batch.apply_async((batch_id,), countdown=countdown), robust=True
    )


def _db_retry(task: Task, error: Exception, **kwargs: Any) -> Exception:
    """Retry with backoff after a lost database connection (a restart)."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()  # a fresh one for the retry
    return task.retry(
        exc=error, countdown=min(2 * 2**task.request.retries, 60), max_retries=30, **kwargs
    )


@shared_task(bind=True, acks_late=True)
def process_batch(self: Task, batch_id: int, counts: dict[str, int] | None = None) -> dict:
    """One batch (a ``RenewalBatch``). Safe to run twice: rows are claimed
    with SKIP LOCKED and only while still due; a charge is unique per
    subscription and interval; the batch is finished (counted) once, by the
    one delivery that holds its lock. A lost database connection retries with
    backoff — only the finishing, with the counts, if the batch had run."""
    try:
        with locks.held(locks.LockSpace.RENEWAL_BATCH, batch_id) as mine:
            if not mine:
                return {}  # another delivery runs it now (if it dies, the run stalls and resumes)
            return _process(self, batch_id, counts)
    except (OperationalError, InterfaceError) as error:
        raise _db_retry(self, error) from error


def _process(task: Task, batch_id: int, counts: dict[str, int] | None) -> dict:
    batch = RenewalBatch.objects.select_related("run").get(pk=batch_id)
    if batch.done_at is not None:
        return {}  # a second delivery of a finished batch
    retry_ids: list[int] = []
    if counts is None:
        outcome = renewals.run_batch(batch.kind, batch.ids, as_of=batch.run.as_of)
        counts, retry_ids = dict(outcome.counts), outcome.retry_ids
    retry, wait = None, 0
    if retry_ids and batch.attempt < TRANSIENT_RETRIES:
        # Transient gateway errors: back off 30 s, 60 s, 120 s; after that
        # they are still due and the next sweep tries again.
        wait = RETRY_BASE_SECONDS * 2**batch.attempt
        due_at = timezone.now() + timedelta(seconds=wait)
        retry = renewals.retry_batch(batch, retry_ids, due_at=due_at)
    try:
        with transaction.atomic():
            renewals.finish_batch(batch_id, Counter(counts), retry=retry)
            if retry is not None:
                _send(retry.pk, countdown=wait)
    except (OperationalError, InterfaceError) as error:
        raise _db_retry(task, error, args=(batch_id, counts)) from error
    return counts


@shared_task
def resume_stalled() -> int:
    """Beat, every 30 s: re-send the unfinished batches of runs that made no
    progress for ``RENEWAL_STALL_AFTER`` seconds (docs/renewals.md). Returns
    the number of batches sent."""
    with transaction.atomic():
        batches = renewals.stalled_batches()
        for batch in batches:
            _send(batch.pk)
    return len(batches)


def _when(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return moment


@shared_task
def advance_clock(client_id: int, target: str) -> int:
    """Move a sandbox client's test clock to ``target`` a day at a time,
    sweeping that client (and only it) at each step, in this task, so that
    each day's reminders, charges and dunning finish before the next day."""
    return clock.advance(client_id, _when(target), sweep=sweep_now)


def sweep_now(client: Client, as_of: datetime) -> None:
    for batch in renewals.start_sweep(client=client, as_of=as_of, trigger="clock"):
        renewals.run_in_process(batch)


@shared_task
def refresh_rollups() -> int:
    """Beat, every 10 s: count every client's changes into the report
    rollups (docs/reports.md). Returns the number of clients counted."""
    return len(rollups.refresh_all())
