"""Celery tasks of the commerce app."""

from __future__ import annotations

from celery import shared_task

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
