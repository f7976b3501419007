"""The renewal contract (docs/renewals.md): the set-based path of a charge
batch is an optimisation of the per-row services, so the same scenario run
both ways writes the same rows — every column of every row of every table a
renewal touches. Ids of new rows follow the order of writing (a batch
charges its plain renewals together, after the others), so rows are matched
by what they are about: a purchase by its subscription, category and
interval, wherever it is referred to.

Each scenario is set up once; then it is swept through the set-based path
and, after rolling back to the same point (and resetting the id sequences),
through the per-row services (``RENEWAL_SET_BASED=false``). What is random
by design is masked: gateway references and outbox UUIDs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from commerce.gateway import CARD_DECLINES_AFTER_FIRST, CARD_TRANSIENT_ERROR, token_for_test_card
from commerce.models import GatewayCharge, OutboxNotification, Purchase, PurchaseItem
from customers.models import CustomerEmail
from subscriptions import renewals, services
from subscriptions.models import HistoryEntry, RenewalRun, Subscription, SubscriptionItem
from tests.conftest import STAFF, T0, sign_up, subscribe
from tests.factories import ClientFactory, ProductFactory

FEB28 = datetime(2026, 2, 28, 12, tzinfo=UTC)
MAR31 = datetime(2026, 3, 31, 12, tzinfo=UTC)
APR30 = datetime(2026, 4, 30, 12, tzinfo=UTC)

# Every table a sweep writes, each in an order that does not depend on the
# order the two paths write in (a batch sends its plain renewals together,
# after the others): rows are compared by what they are about, not by id.
WRITTEN = [
    (Subscription, ("id",)),
    (SubscriptionItem, ("id",)),
    (Purchase, ("subscription_id", "category", "interval_no", "id")),
    (PurchaseItem, ("purchase__subscription_id", "purchase__interval_no", "running_no")),
    (GatewayCharge, ("idempotency_key",)),
    (HistoryEntry, ("subscription_id", "created_at", "id")),
    (OutboxNotification, ("subscription_id", "created_at", "type", "purchase_id")),
    (CustomerEmail, ("subscription_id", "created_at", "kind", "id")),
    (RenewalRun, ("client_id", "as_of")),
]
RANDOM = {"reference", "gateway_reference"}  # the gateway's reference of a charge
TOKENS = {"payment_token", "token"}  # card tokens
WRITE_ORDER = {"id"}  # ids of new rows follow the order of writing, not a rule


def sweep(at: datetime) -> None:
    """What beat and the workers do, in this process."""
    for work in renewals.start_sweep(as_of=at):
        renewals.run_in_process(work)


def rows() -> dict[str, list[Any]]:
    """Every row of every table a renewal writes. A purchase is named by its
    subscription, category and interval wherever it is referred to (its id,
    lines, history summaries, payloads, e-mails)."""
    name = {
        pk: f"<purchase {sub}/{category}/{no}>"
        for pk, sub, category, no in Purchase.objects.values_list(
            "pk", "subscription_id", "category", "interval_no"
        )
    }

    def purchase(value: Any) -> Any:
        return name.get(value, value)

    def text(value: str) -> str:
        for pk, label in name.items():
            value = value.replace(f"purchase {pk})", f"purchase {label})")
        return value

    out: dict[str, list[Any]] = {}
    for model, order in WRITTEN:
        found = []
        for row in model.objects.order_by(*order).values():
            for key in WRITE_ORDER & set(row):
                row[key] = purchase(row[key]) if model is Purchase else None
            for key in RANDOM & set(row):
                row[key] = "<reference>" if row[key] else ""
            for key in TOKENS & set(row):  # tok_<behaviour>_<random>: keep the behaviour
                row[key] = row[key].rsplit("_", 1)[0]
            if "purchase_id" in row:
                row["purchase_id"] = purchase(row["purchase_id"])
            if model is HistoryEntry:
                row["summary"] = text(row["summary"])
            if model is OutboxNotification and "Purchase" in row["payload"]:
                row["payload"]["Purchase"]["Id"] = purchase(row["payload"]["Purchase"]["Id"])
            found.append(row)
        out[model._meta.label] = found
    return out


def reset_sequences() -> None:
    """The next id of each table as it follows from its rows, so both runs
    hand out the same ids."""
    with connection.cursor() as cursor:
        for model, _ in WRITTEN:
            if model in (OutboxNotification, GatewayCharge, PurchaseItem):
                continue
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608 - our table names
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)",
                [table],
            )


# --- the scenarios: each sets up subscriptions and returns the sweep times ---


def paid(sm2: Any) -> list[datetime]:
    subscribe(sm2, ProductFactory(client=sm2), quantity=2)
    return [FEB28]


def declined_to_grace(sm2: Any) -> list[datetime]:
    subscribe(sm2, ProductFactory(client=sm2), number=CARD_DECLINES_AFTER_FIRST)
    return [FEB28]


def declined_with_no_grace_or_hold(sm2: Any) -> list[datetime]:
    sm2.grace_period_days = sm2.hold_days = 0
    sm2.save()
    subscribe(sm2, ProductFactory(client=sm2), number=CARD_DECLINES_AFTER_FIRST)
    return [FEB28]


def transient_error(sm2: Any) -> list[datetime]:
    sub = subscribe(sm2, ProductFactory(client=sm2))
    sub.payment_method.token = token_for_test_card(CARD_TRANSIENT_ERROR)
    sub.payment_method.save()
    return [FEB28, FEB28 + timedelta(hours=1)]


def retry_days(sm2: Any) -> list[datetime]:
    """Declined, retried on day 1 (declined again), paid on day 3."""
    sub = subscribe(sm2, ProductFactory(client=sm2), number=CARD_DECLINES_AFTER_FIRST)
    steps = [FEB28, FEB28 + timedelta(days=1, minutes=1)]

    def fix_card() -> None:
        sub.payment_method.token = token_for_test_card("4242424242424242")
        sub.payment_method.save()

    return steps + [(FEB28 + timedelta(days=3, minutes=1), fix_card)]  # type: ignore[list-item]


def last_billing_event(sm2: Any) -> list[datetime]:
    subscribe(sm2, ProductFactory(client=sm2, recurrence_count=2))
    return [FEB28, MAR31]


def two_items_one_deactivated(sm2: Any) -> list[datetime]:
    products = [ProductFactory(client=sm2), ProductFactory(client=sm2, price=Decimal("2.35"))]
    sub = subscribe(sm2, *products, quantity=3)
    services.deactivate_items(subscription=sub, running_nos=[2], actor=STAFF, at=T0)
    return [FEB28, MAR31]


def month_ends(sm2: Any) -> list[datetime]:
    subscribe(sm2, ProductFactory(client=sm2))  # signed up on 31 January
    yearly = ProductFactory(client=sm2, initial_interval_months=12, interval_months=12)
    subscribe(sm2, yearly, email="yearly@example.com")
    return [FEB28, MAR31, APR30, T0 + timedelta(days=365)]


def everything_in_one_batch(sm2: Any) -> list[datetime]:
    """Plain and special cases side by side in the same batches."""
    sm1 = ClientFactory(sm_version="1.0")
    manual = ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    subscribe(sm1, ProductFactory(client=sm1), email="sm1@example.com")
    sm1_manual = subscribe(sm1, manual, email="sm1-manual@example.com")
    services.reinstate_items(subscription=sm1_manual, running_nos=[1], actor=STAFF, at=T0)
    monthly = ProductFactory(client=sm2)
    subscribe(sm2, monthly, email="plain@example.com")
    subscribe(sm2, monthly, email="manual@example.com", auto=False)
    subscribe(sm2, monthly, email="declined@example.com", number=CARD_DECLINES_AFTER_FIRST)
    invoice = sign_up(sm2, monthly, invoice=True, email="invoice@example.com")
    services.mark_purchase_paid(purchase=invoice.purchase, actor=STAFF, at=T0)
    subscribe(sm2, ProductFactory(client=sm2, recurrence_count=1), email="last@example.com")
    return [FEB28, FEB28 + timedelta(days=1, minutes=1), MAR31]


SCENARIOS: dict[str, Callable[[Any], list]] = {
    f.__name__: f
    for f in [
        paid,
        declined_to_grace,
        declined_with_no_grace_or_hold,
        transient_error,
        retry_days,
        last_billing_event,
        two_items_one_deactivated,
        month_ends,
        everything_in_one_batch,
    ]
}


@pytest.mark.postgres
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_set_based_path_writes_what_the_services_write(
    scenario, sm2, settings, clock, needs_postgres
):
    steps = SCENARIOS[scenario](sm2)
    plan = [s if isinstance(s, tuple) else (s, None) for s in steps]

    def sweeps(set_based: bool) -> dict:
        settings.RENEWAL_SET_BASED = set_based
        point = transaction.savepoint()
        reset_sequences()
        try:
            for at, before in plan:
                if before is not None:
                    before()
                clock.move_to(at, tick=False)
                sweep(at)
            return rows()
        finally:
            transaction.savepoint_rollback(point)

    set_based, per_row = sweeps(True), sweeps(False)
    assert set_based["subscriptions.RenewalRun"], "the scenario swept nothing"
    for table, written in per_row.items():
        assert set_based[table] == written, table


def test_the_contract_would_see_a_difference(sm2, settings, clock, needs_postgres):
    """The comparison is not blind: a row written differently shows."""
    subscribe(sm2, ProductFactory(client=sm2))
    clock.move_to(FEB28, tick=False)
    sweep(FEB28)
    before = rows()
    Subscription.objects.update(row_version=99)
    assert rows() != before
