from celery import shared_task

from .emails import send_pending


@shared_task(acks_late=True)
def send_customer_emails() -> int:
    """Send what is queued; safe to run twice (rows are claimed with SKIP LOCKED)."""
    total = 0
    while sent := send_pending():
        total += sent
    return total
