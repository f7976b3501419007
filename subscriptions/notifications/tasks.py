"""Celery task that delivers the outbox as webhooks (``webhooks``)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from . import webhooks

# Retries due within this many seconds get a task of their own; later ones
# are picked up by beat's run of ``deliver_notifications`` every minute.
WAKE_WITHIN = 300
BATCH = 100  # deliveries one task sends before handing over to a new one


@shared_task(acks_late=True)
def deliver_notifications() -> int:
    """Fan the outbox out into deliveries and send each endpoint's due ones
    in a task of its own, so a slow or dead receiver delays only itself.
    Safe to run twice (rows are claimed with SKIP LOCKED). Returns the
    number of endpoints with deliveries due."""
    while webhooks.fan_out():
        pass
    endpoints = webhooks.due_endpoints()
    for endpoint_id in endpoints:
        send_to_endpoint.delay(endpoint_id)
    return len(endpoints)


@shared_task(acks_late=True)
def send_to_endpoint(endpoint_id: int) -> int:
    """One endpoint's due deliveries, one at a time (unless another task is
    already sending to it: that one sends these too); then, if a retry is
    due soon, a task for it at that time (retries keep their own schedule)."""
    with webhooks.sending_to(endpoint_id) as mine:
        if not mine:
            return 0
        tried = webhooks.send_due(endpoint_id=endpoint_id, limit=BATCH)
    if tried >= BATCH:  # more may be due: go on in a new task (others get a turn)
        send_to_endpoint.delay(endpoint_id)
    elif tried:
        wake = webhooks.next_attempt(endpoint_id)
        now = timezone.now()
        if wake is not None and now < wake <= now + timedelta(seconds=WAKE_WITHIN):
            send_to_endpoint.apply_async((endpoint_id,), eta=wake)
    return tried


def deliver_after_commit() -> None:
    """Deliver what this transaction writes to the outbox once it commits."""
    transaction.on_commit(deliver_notifications.delay, robust=True)
