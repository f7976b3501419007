"""Report rollups (docs/reports.md): after random sequences of lifecycle
events, counted incrementally at random moments, the rollups equal a
rebuild from the raw tables, and every report read from them equals the
same report computed from the raw tables (``report_oracle``: the reports'
aggregate queries before rollups)."""

from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.gateway import CARD_APPROVED, CARD_DECLINES_AFTER_FIRST
from commerce.models import Purchase
from subscriptions import reports, rollups, services
from subscriptions.errors import DomainError
from subscriptions.models import (
    Rollup,
    RollupCustomer,
    RollupDirty,
    Subscription,
    SubscriptionStatus,
)
from subscriptions.reports import Filters
from tests.conftest import STAFF, T0, subscribe
from tests.factories import ClientFactory, ProductFactory
from tests.subscriptions import report_oracle as oracle
from tests.subscriptions.test_invariants_property import apply, events

steps = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 2), events),
        # renewals (paid or declined, then dunning) more often than one in twelve
        st.tuples(st.integers(0, 2), st.just(("billing_date_passes",))),
        st.tuples(st.integers(0, 2), st.tuples(st.just("days_pass"), st.integers(1, 5))),
        st.tuples(st.integers(0, 2), st.tuples(st.just("chargeback"))),
        st.tuples(st.just(-1), st.tuples(st.just("count"))),  # the rollup job runs
    ),
    min_size=3,
    max_size=20,
)


def table(client):
    """The client's rollups as a comparable set (rows counting nothing left out)."""
    figures = {
        (r.currency, r.product_id, r.metric, r.day, r.dim, r.n, r.amount)
        for r in Rollup.objects.filter(client=client)
        if r.n or r.amount
    }
    customers = set(
        RollupCustomer.objects.filter(client=client, n__gt=0).values_list(
            "currency", "product_id", "customer_id", "n"
        )
    )
    return figures, customers


def same_reports(client, products, today):
    """Every report, from rollups and from the raw tables, for each currency
    and product filter."""
    start, end = date(2025, 12, 1), today.date() + timedelta(days=200)
    midnight = datetime.combine(today.date(), datetime.min.time(), tzinfo=UTC)
    for currency in ("EUR", "USD"):
        for product in [None, *products]:
            f = Filters(client, currency, start, end, product)
            for name in ("overview", "mrr", "mrr_by_product", "revenue", "money_back", "churn"):
                mine, theirs = getattr(reports, name)(f), getattr(oracle, name)(f)
                assert mine == theirs, (name, currency, product)
            assert reports.renewal_success(f) == oracle.renewal_success(f)
            mine, theirs = reports.upcoming(f, now=today), oracle.upcoming(f, now=midnight)
            assert asdict(mine) == asdict(theirs), (currency, product)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sm=st.sampled_from(["1.0", "2.0"]),
    cards=st.lists(
        st.sampled_from([CARD_APPROVED, CARD_DECLINES_AFTER_FIRST]), min_size=3, max_size=3
    ),
    manual=st.booleans(),
    plan=steps,
)
def test_rollups_equal_a_rebuild_and_the_raw_reports_after_random_events(
    db, sm, cards, manual, plan
):
    with transaction.atomic():
        client = ClientFactory(sm_version=sm, grace_period_days=2, hold_days=2)
        eur = [
            ProductFactory(client=client, name=f"P{no}", price=Decimal(f"{7 + no}.{no}5"))
            for no in range(3)
        ]
        usd = ProductFactory(client=client, name="Dollars", price=Decimal("50.00"), currency="USD")
        subs = [
            subscribe(client, eur[0], eur[1], number=cards[0], auto=not manual),
            subscribe(client, eur[1], eur[2], number=cards[1], email="two@example.com"),
            subscribe(client, usd, number=cards[2], email="two@example.com"),
        ]
        now = T0
        for which, event in plan:
            if event[0] == "count":
                rollups.catch_up(client.pk)
                continue
            sub = Subscription.objects.get(pk=subs[which].pk)
            try:
                if event[0] == "billing_date_passes":
                    now = max(now, sub.next_billing_date)
                    services.renew_due(subscription=sub, at=now)
                elif event[0] == "days_pass":
                    now += timedelta(days=event[1])
                    services.advance_dunning(subscription=sub, at=now)
                elif event[0] == "chargeback":
                    paid = Purchase.objects.filter(subscription=sub, status="paid").last()
                    if paid:
                        services.chargeback(purchase=paid, actor=STAFF, at=now)
                else:
                    apply(event, sub, now)
            except DomainError:
                pass
        rollups.catch_up(client.pk)
        assert not RollupDirty.objects.filter(client_id=client.pk).exists()
        counted = table(client)
        same_reports(client, [*eur, usd], now)
        rollups.rebuild(client.pk)
        assert table(client) == counted
        transaction.set_rollback(True)


def test_a_bulk_update_outside_the_services_is_counted(sm2):
    """The triggers see every write, not just the services'."""
    product = ProductFactory(client=sm2, price=Decimal("10.00"))
    for no in range(3):
        subscribe(sm2, product, email=f"c{no}@example.com")
    f = Filters(sm2, "EUR", date(2026, 1, 1), date(2026, 12, 31))
    assert reports.overview(f).active == 3
    Subscription.objects.filter(client=sm2).update(status=SubscriptionStatus.HOLD)
    assert reports.overview(f).active == 0
    assert reports.overview(f).subscribers == 0
    assert reports.mrr(f).mrr == Decimal("0.00")


def test_counting_twice_or_after_a_rebuild_changes_nothing(sm2, sm1):
    product = ProductFactory(client=sm2, price=Decimal("10.00"))
    sub = subscribe(sm2, product)
    services.renew_due(subscription=sub, at=sub.next_billing_date)
    rollups.catch_up(sm2.pk)
    counted = table(sm2)
    # Every source marked again (a redelivered batch, a crash after the
    # writes): counted again, the figures do not move.
    RollupDirty.objects.bulk_create(
        RollupDirty(client_id=sm2.pk, kind=kind, source_id=pk)
        for kind, model in (("s", Subscription), ("p", Purchase))
        for pk in model.objects.filter(client=sm2).values_list("pk", flat=True)
    )
    rollups.catch_up(sm2.pk)
    assert table(sm2) == counted
    rollups.rebuild(sm2.pk)
    assert table(sm2) == counted
    # Another client's figures are its own.
    assert table(sm1) == (set(), set())
    f = Filters(sm2, "EUR", date(2026, 1, 1), date(2026, 12, 31))
    assert reports.overview(replace(f, client=sm1)).active == 0


def test_the_job_counts_every_client_and_drops_a_deleted_clients_marks(sm2):
    product = ProductFactory(client=sm2, price=Decimal("10.00"))
    subscribe(sm2, product)
    RollupDirty.objects.create(client_id=987654, kind="s", source_id=1)
    assert rollups.refresh_all() == [sm2.pk]
    assert not RollupDirty.objects.exists()
    assert Rollup.objects.filter(client=sm2, metric="status", n=1).count() == 2  # all + product


def test_rebuild_command(sm2, capsys):
    product = ProductFactory(client=sm2, price=Decimal("10.00"))
    subscribe(sm2, product)
    Rollup.objects.all().delete()
    RollupDirty.objects.all().delete()
    call_command("rebuild_rollups", "--client", sm2.slug)
    out = capsys.readouterr().out
    assert f"{sm2.slug}: counted subscriptions 1, purchases 1, credit notes 0" in out
    f = Filters(sm2, "EUR", date(2026, 1, 1), date(2026, 12, 31))
    assert reports.overview(f).active == 1


@pytest.mark.django_db(transaction=True)
def test_two_jobs_at_once_count_each_change_once(needs_postgres):
    """Two processes counting one client: the second skips the locked client
    (or finds nothing left); the figures are those of a rebuild."""
    import threading

    from django.db import connection

    client = ClientFactory()
    product = ProductFactory(client=client, price=Decimal("10.00"))
    for no in range(30):
        subscribe(client, product, email=f"c{no}@example.com")
    errors = []

    def job():
        try:
            rollups.catch_up(client.pk, wait=True)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    counted = table(client)
    rollups.rebuild(client.pk)
    assert table(client) == counted
    f = Filters(client, "EUR", date(2026, 1, 1), date(2026, 12, 31))
    assert reports.overview(f).active == 30


def test_the_report_page_says_when_changes_are_still_being_counted(login, sm2, monkeypatch):
    product = ProductFactory(client=sm2, price=Decimal("10.00"))
    subscribe(sm2, product)
    browser = login(sm2)
    page = browser.get("/reports/overview/")
    assert b'data-testid="counting"' not in page.content  # a few changes: counted first
    assert b'data-testid="kpi-active-subscriptions">1<' in page.content
    # A backlog larger than a page counts at once (a renewal run): the page
    # shows what is counted so far and says so.
    monkeypatch.setattr(rollups, "PASS_SIZE", 1)
    for no in range(8):
        subscribe(sm2, product, email=f"more{no}@example.com")
    page = browser.get("/reports/overview/")
    assert b"Recent changes are still being counted" in page.content
    rollups.refresh_all()
    page = browser.get("/reports/overview/")
    assert b'data-testid="counting"' not in page.content
    assert b'data-testid="kpi-active-subscriptions">9<' in page.content


def test_renewals_recorded_by_the_set_based_path_are_counted(sm2, needs_postgres):
    """The batch path writes with COPY and UPDATE … FROM unnest: the
    triggers see those statements too."""
    from subscriptions import renewals

    product = ProductFactory(client=sm2, price=Decimal("10.00"))
    subs = [subscribe(sm2, product, email=f"c{no}@example.com") for no in range(5)]
    due = subs[0].next_billing_date
    rollups.catch_up(sm2.pk)
    assert renewals.charge_batch([s.pk for s in subs], as_of=due).counts["charged"] == 5
    f = Filters(sm2, "EUR", date(2026, 1, 1), date(2026, 12, 31))
    months = {row.month.month: row.values for row in reports.renewal_success(f)}
    assert months[due.month] == {"Due": 5, "Charged": 5, "Success %": Decimal("100.00")}
    counted = table(sm2)
    same_reports(sm2, [product], due)
    rollups.rebuild(sm2.pk)
    assert table(sm2) == counted
