"""The set-based renewal path (PostgreSQL) writes exactly what the ORM batch
path and the per-row service write: same dates (month ends, yearly, day
intervals, a re-based anchor with microseconds), same purchase and lines,
same history before/after, outbox payload and receipt e-mail."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from commerce.models import GatewayCharge, Purchase
from subscriptions import renewals, services
from subscriptions.models import Subscription
from tests.conftest import STAFF, T0, fresh, subscribe
from tests.factories import ProductFactory

FEB28 = datetime.fromisoformat("2026-02-28T12:00:00+00:00")
MAR31 = datetime.fromisoformat("2026-03-31T12:00:00+00:00")
REBASED = datetime.fromisoformat("2026-02-15T08:30:00.250000+00:00")


def _month_end(sm2):
    return [ProductFactory(client=sm2)], {}, [FEB28, MAR31]


def _yearly(sm2):
    yearly = ProductFactory(
        client=sm2, initial_interval_months=12, interval_months=12, price=Decimal("99.90")
    )
    return [yearly], {}, [T0 + timedelta(days=365)]


def _days_after_a_trial(sm2):
    trial = ProductFactory(
        client=sm2,
        initial_interval_months=0,
        initial_interval_days=14,
        interval_months=0,
        interval_days=30,
    )
    return [trial], {}, [T0 + timedelta(days=14), T0 + timedelta(days=44)]


def _two_items_quantity_three(sm2):
    products = [ProductFactory(client=sm2), ProductFactory(client=sm2, price=Decimal("2.35"))]
    return products, {"quantity": 3}, [FEB28]


LINE_FIELDS = ("running_no", "product_id", "quantity", "unit_price", "amount", "interval_no")

CASES = {
    "month-end": _month_end,
    "yearly": _yearly,
    "days-after-trial": _days_after_a_trial,
    "two-items": _two_items_quantity_three,
}


def _written(sub: Subscription) -> dict:
    """What renewals wrote for ``sub``, with its own ids taken out."""
    sub = fresh(sub)
    purchases = list(
        Purchase.objects.filter(subscription=sub, category="renewal").order_by("interval_no")
    )
    label = {p.pk: f"P{n}" for n, p in enumerate(purchases)}

    def text(value: str) -> str:
        for pk, name in label.items():
            value = value.replace(f"purchase {pk}", f"purchase {name}")
        return value

    def payload(data: dict) -> dict:
        data = copy.deepcopy(data)
        if "Purchase" in data:
            data["Purchase"]["Id"] = label[data["Purchase"]["Id"]]
            data["Purchase"]["CustomerId"] = None
            for line in data["Purchase"]["Items"]:
                line["RecurringBilling"]["SubscriptionId"] = "S"
        return data

    renewed = sub.history.filter(event_code="renewed").order_by("created_at", "id")
    return {
        "subscription": (
            sub.status,
            sub.renewal_type,
            sub.last_interval_no,
            sub.next_billing_date,
            sub.row_version,
        ),
        "items": list(
            sub.items.order_by("running_no").values_list("running_no", "status", "last_interval_no")
        ),
        "purchases": [
            (
                p.status,
                p.total,
                p.currency,
                p.interval_no,
                p.charge_attempts,
                p.paid_at,
                p.created_at,
                p.payment_method_id == sub.payment_method_id,
                list(p.items.order_by("running_no").values_list(*LINE_FIELDS)),
            )
            for p in purchases
        ],
        "history": [
            (h.created_at, h.actor_kind, h.actor_label, text(h.summary), h.before, h.after)
            for h in renewed
        ],
        "outbox": [
            (o.type, o.created_at, o.generate_mail, label[o.purchase_id], payload(o.payload))
            for o in sub.notifications.filter(purchase__category="renewal").order_by("created_at")
        ],
        "emails": [
            (e.created_at, e.notification, e.subject, e.to == sub.customer.email)
            for e in sub.emails.filter(kind="receipt", purchase__category="renewal").order_by(
                "created_at"
            )
        ],
        "charges": GatewayCharge.objects.filter(
            idempotency_key__startswith=f"renewal:{sub.pk}:"
        ).count(),
    }


@pytest.mark.parametrize("case", CASES)
def test_set_based_orm_and_per_row_renewals_write_the_same(case, sm2, settings, needs_postgres):
    products, options, dates = CASES[case](sm2)
    twins = {
        way: subscribe(sm2, *products, email=f"{way}@example.com", **options)
        for way in ("sql", "orm", "row")
    }
    if case == "two-items":
        for sub in twins.values():  # only Active items are charged
            services.deactivate_items(subscription=sub, running_nos=[2], actor=STAFF, at=T0)
    for at in dates:
        settings.RENEWAL_SET_BASED = True
        assert renewals.charge_batch([twins["sql"].pk], as_of=at).counts["charged"] == 1
        settings.RENEWAL_SET_BASED = False
        assert renewals.charge_batch([twins["orm"].pk], as_of=at).counts["charged"] == 1
        assert services.renew_due(subscription=twins["row"], at=at) == "charged"
    sql, orm, row = (_written(twins[way]) for way in ("sql", "orm", "row"))
    for key in sql:
        assert sql[key] == orm[key] == row[key], key
    assert sql["subscription"][2] == 1 + len(dates)
    assert sql["charges"] == len(dates)


def test_a_rebased_anchor_with_microseconds(sm2, settings, needs_postgres):
    """After a changed billing date the anchor is interval n, not 1, and
    its time has a fraction of a second: both survive the SQL date maths."""
    product = ProductFactory(client=sm2)
    sql, row = (subscribe(sm2, product, email=f"{w}@example.com") for w in ("sql", "row"))
    for sub in (sql, row):
        services.change_next_billing_date(
            subscription=sub, next_billing_date=REBASED, actor=STAFF, at=T0
        )
    settings.RENEWAL_SET_BASED = True
    for at in (REBASED, REBASED + timedelta(days=28)):
        assert renewals.charge_batch([sql.pk], as_of=at).counts["charged"] == 1
        assert services.renew_due(subscription=row, at=at) == "charged"
    assert _written(sql) == _written(row)
    assert fresh(sql).next_billing_date == datetime.fromisoformat(
        "2026-04-15T08:30:00.250000+00:00"
    )
    history = fresh(sql).history.filter(event_code="renewed").order_by("id").last()
    assert history.after["next_billing_date"] == "2026-04-15T08:30:00.250000+00:00"


def test_a_charge_recorded_by_another_batch_is_skipped_not_renewed_twice(
    sm2, monthly, needs_postgres
):
    """Two batches charged the same claim (a task delivered twice): the
    second one to record finds the purchase paid and changes nothing."""
    sub = subscribe(sm2, monthly)
    claims, _ = renewals._claim_sql([sub.pk], as_of=FEB28)
    first = renewals.charge_batch([sub.pk], as_of=FEB28)
    from subscriptions import renewal_sql

    assert renewal_sql.record_paid([(claims[0].purchase_id, "tg_again")], at=FEB28) == 0
    assert first.counts["charged"] == 1
    sub = fresh(sub)
    assert (sub.last_interval_no, sub.history.filter(event_code="renewed").count()) == (2, 1)
    assert Purchase.objects.get(pk=claims[0].purchase_id).charge_attempts == 1


def test_a_claim_whose_insert_met_a_concurrent_claims_purchase_skips_it(
    sm2, monthly, needs_postgres, monkeypatch
):
    """A claim whose snapshot predates another claim's commit sees no
    purchase, so it tries to open one; ON CONFLICT leaves it to the other
    claim (a worker race seen with two sweeps at once). Here the statement's
    answer is the one such a claim gets: the row, and no purchase opened."""
    from subscriptions import renewal_sql

    sub = subscribe(sm2, monthly)
    monkeypatch.setattr(
        renewal_sql,
        "CLAIM",
        "SELECT 'c', (%(ids)s::bigint[])[1], 2, 'EUR', 1, 'card', '4242424242424242', "
        "NULL::bigint, NULL::int, NULL::numeric, true WHERE %(as_of)s IS NOT NULL",
    )
    outcome = renewals.charge_batch([sub.pk], as_of=FEB28)
    assert (outcome.counts["skipped"], outcome.counts["charged"]) == (1, 0)
    assert not GatewayCharge.objects.filter(idempotency_key__startswith="renewal:").exists()
