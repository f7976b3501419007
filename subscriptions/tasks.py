"""Celery tasks of the renewal engine: each takes ids and calls one service."""

from __future__ import annotations

from datetime import datetime

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from kombu.exceptions import OperationalError as BrokerError

from commerce import clock
from commerce.models import Client

from . import renewals

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
    for item in work:
        _send(item.run.pk, item.kind, item.ids, item.run.as_of.isoformat())
    return len(work)


def _send(run_id: int, kind: str, ids: list[int], as_of: str) -> None:
    transaction.on_commit(lambda: process_batch.delay(run_id, kind, ids, as_of))


@shared_task(bind=True, acks_late=True)
def process_batch(
    self: Task, run_id: int, kind: str, ids: list[int], as_of: str, attempt: int = 0
) -> dict:
    """One batch. Safe to run twice: rows are claimed with SKIP LOCKED and
    only while still due; a charge is unique per subscription and interval.
    A lost database connection (a restart) retries the batch with backoff."""
    moment = _when(as_of)
    try:
        outcome = renewals.run_batch(kind, ids, as_of=moment)
    except (OperationalError, InterfaceError) as error:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()  # a fresh one for the retry
        raise self.retry(
            exc=error, countdown=min(5 * 2**self.request.retries, 120), max_retries=20
        ) from error
    again = bool(outcome.retry_ids) and attempt < TRANSIENT_RETRIES
    if again:
        renewals.retry_later(run_id)  # the run waits for one more batch
    renewals.finish_batch(run_id, outcome.counts)  # this batch's counts, first
    if again:
        # Transient gateway errors: back off 30 s, 60 s, 120 s; after that
        # they are still due and the next sweep tries again.
        try:
            process_batch.apply_async(
                (run_id, kind, outcome.retry_ids, as_of, attempt + 1),
                countdown=RETRY_BASE_SECONDS * 2**attempt,
            )
        except BrokerError:  # the broker is down: the next sweep has them
            renewals.retry_later(run_id, batches=-1)
    return dict(outcome.counts)


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
    for work in renewals.start_sweep(client=client, as_of=as_of, trigger="clock"):
        outcome = renewals.run_batch(work.kind, work.ids, as_of=as_of)
        renewals.finish_batch(work.run.pk, outcome.counts)
