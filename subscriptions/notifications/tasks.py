"""Celery task that delivers the outbox as webhooks (``webhooks``)."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from . import webhooks


@shared_task(acks_late=True)
def deliver_notifications() -> int:
    """Fan the outbox out into deliveries and send what is due; safe to run
    twice (rows are claimed with SKIP LOCKED)."""
    while webhooks.fan_out():
        pass
    sent = 0
    for _ in range(50):  # bounded: beat comes back for the rest
        tried = webhooks.send_due()
        sent += tried
        if not tried:
            break
    return sent


def deliver_after_commit() -> None:
    """Deliver what this transaction writes to the outbox once it commits."""
    transaction.on_commit(deliver_notifications.delay, robust=True)
