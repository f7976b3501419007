"""Celery tasks of the customers app: sending queued customer e-mails."""

from celery import shared_task
from django.db import transaction

from .emails import send_pending


@shared_task(acks_late=True)
def send_customer_emails() -> int:
    """Send what is queued; safe to run twice (rows are claimed with SKIP LOCKED)."""
    total = 0
    while sent := send_pending():
        total += sent
    return total


def send_after_commit() -> None:
    """Send the e-mails this transaction queues once it commits."""
    transaction.on_commit(send_customer_emails.delay, robust=True)
