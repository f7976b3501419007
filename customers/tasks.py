"""Celery tasks of the customers app: sending queued customer e-mails."""

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from .emails import send_pending


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=30,
)
def send_customer_emails() -> int:
    """Send what is queued; safe to run twice (rows are claimed with SKIP
    LOCKED). A lost database connection retries with backoff."""
    total = 0
    while sent := send_pending():
        total += sent
    return total


def send_after_commit() -> None:
    """Send the e-mails this transaction queues once it commits."""
    transaction.on_commit(send_customer_emails.delay, robust=True)
