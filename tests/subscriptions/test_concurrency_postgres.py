"""Row locks on PostgreSQL: concurrent workers and clicks change a
subscription once. Skipped on SQLite locally; required in CI."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from commerce.models import GatewayCharge, Purchase
from subscriptions import services
from subscriptions.errors import DomainError
from tests.conftest import STAFF, fresh, subscribe

FEB28 = datetime(2026, 2, 28, 12, tzinfo=UTC)
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(n, work):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(work())
        except DomainError as exc:
            errors.append(exc.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


def test_four_workers_renewing_the_same_subscription_charge_once(
    needs_postgres, sm2, monthly, settings
):
    settings.TEST_GATEWAY_LATENCY_MS = 50  # widen the race window
    sub = subscribe(sm2, monthly)
    results, errors = run_together(4, lambda: services.renew_due(subscription=sub, at=FEB28))
    assert sorted(results).count("charged") >= 1 and not errors
    assert fresh(sub).last_interval_no == 2
    assert Purchase.objects.filter(subscription=sub, category="renewal", status="paid").count() == 1
    assert GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").count() == 1


def test_two_clicks_on_switch_to_manual_switch_once(needs_postgres, sm2, monthly):
    sub = subscribe(sm2, monthly)
    results, errors = run_together(
        2,
        lambda: services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF),
    )
    assert len(results) == 1 and errors == ["The renewal type is already Manual."]
    assert sub.history.filter(event_code="renTypeUpd").count() == 1
