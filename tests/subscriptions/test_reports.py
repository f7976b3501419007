"""Reports (docs/back-office.md) on a small hand-built history, with every expected figure
worked out by hand in the comments.

The history (client on SM 2.0, EUR unless said):
  A  ann  Pro monthly 10.00      signed up 10 Mar, renewed 10 Apr, 10 May, 10 Jun  -> Active
  B  ann  Yearly 120.00          signed up  1 Apr                                   -> Active
  C  bob  Weekly 7.00 (manual)   signed up 12 Jun                              -> Active, Manual
  D  cid  Pro monthly x 2 = 20   signed up 20 Feb, renewed 20 Mar, deactivated 5 Apr -> Deactivated
  E  dan  Pro monthly 10.00      signed up  1 May, renewal on 1 Jun declined        -> Grace
  F  eve  Dollar plan 50.00 USD  signed up  5 May                                   -> Active (USD)
Today is 15 June 2026, 12:00 UTC.
"""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from commerce.gateway import CARD_DECLINES_AFTER_FIRST
from subscriptions import reports, services
from subscriptions.reports import Filters
from tests.conftest import STAFF, assets_from_elsewhere, subscribe
from tests.factories import ProductFactory

TODAY = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def on(month, day):
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(sm2, clock):
    clock.move_to(TODAY, tick=False)
    return build_shop(sm2)


def build_shop(sm2):
    """The history in the module doc; returns the client and the Pro product."""
    pro = ProductFactory(client=sm2, name="Pro", price=Decimal("10.00"))
    yearly = ProductFactory(
        client=sm2,
        name="Yearly",
        price=Decimal("120.00"),
        initial_interval_months=12,
        interval_months=12,
    )
    weekly = ProductFactory(
        client=sm2,
        name="Weekly",
        price=Decimal("7.00"),
        initial_interval_months=0,
        initial_interval_days=7,
        interval_months=0,
        interval_days=7,
    )
    dollars = ProductFactory(client=sm2, name="Dollar plan", price=Decimal("50.00"), currency="USD")
    a = subscribe(sm2, pro, at=on(3, 10), email="ann@example.com")
    for month in (4, 5, 6):
        services.renew_due(subscription=a, at=on(month, 10))
    subscribe(sm2, yearly, at=on(4, 1), email="ann@example.com")
    subscribe(sm2, weekly, at=on(6, 12), email="bob@example.com", auto=False)
    d = subscribe(sm2, pro, at=on(2, 20), email="cid@example.com", quantity=2)
    services.renew_due(subscription=d, at=on(3, 20))
    services.deactivate_items(subscription=d, running_nos=[1], actor=STAFF, at=on(4, 5))
    e = subscribe(sm2, pro, at=on(5, 1), email="dan@example.com", number=CARD_DECLINES_AFTER_FIRST)
    services.renew_due(subscription=e, at=on(6, 1))
    subscribe(sm2, dollars, at=on(5, 5), email="eve@example.com")
    return {"client": sm2, "pro": pro}


def filters(shop, currency="EUR", product=None):
    return Filters(shop["client"], currency, date(2026, 2, 1), date(2026, 6, 15), product)


def test_active_subscribers_statuses_mrr_and_arr(shop):
    o = reports.overview(filters(shop))
    assert (o.active, o.subscribers) == (3, 2)  # A, B, C; ann and bob
    assert sorted(o.by_status) == [
        ("Active", "Automatic", 2),
        ("Active", "Manual", 1),
        ("Deactivated", "Automatic", 1),
        ("Grace", "Automatic", 1),
    ]
    o = reports.mrr(filters(shop))
    # MRR: A 10.00 + B 120.00 / 12 = 10.00 + C 7.00 x 365 / 84 = 30.4166... = 50.4166... -> 50.42
    assert o.mrr == Decimal("50.42")
    # ARR from the exact MRR: (10 + 10 + 7 x 365 / 84) x 12 = 240 + 365 = 605.00
    assert o.arr == Decimal("605.00")
    assert [(m, d, monthly) for m, d, _, monthly in o.by_interval] == [
        (0, 7, Decimal("30.42")),
        (1, 0, Decimal("10.00")),
        (12, 0, Decimal("10.00")),
    ]
    # By product: Weekly 30.42 (C), then Pro 10.00 (A) and Yearly 10.00 (B) by name.
    assert reports.mrr_by_product(filters(shop)) == [
        ("Weekly", Decimal("30.42")),
        ("Pro", Decimal("10.00")),
        ("Yearly", Decimal("10.00")),
    ]


def test_overview_by_product_and_by_currency(shop):
    pro = filters(shop, product=shop["pro"])
    # Only A: D ended, E is in Grace.
    assert (reports.overview(pro).active, reports.mrr(pro).mrr) == (1, Decimal("10.00"))
    usd = filters(shop, currency="USD")
    assert reports.overview(usd).active == 1
    assert (reports.mrr(usd).mrr, reports.mrr(usd).arr) == (Decimal("50.00"), Decimal("600.00"))


def test_new_vs_renewal_revenue_per_month(shop):
    rows = {r.month.month: r.values for r in reports.revenue(filters(shop))}
    # Feb: D new 20. Mar: A new 10, D renewal 20. Apr: B new 120, A renewal 10.
    # May: E new 10, A renewal 10. Jun: C new 7, A renewal 10 (E's renewal was declined).
    expected = {2: (20, 0), 3: (10, 20), 4: (120, 10), 5: (10, 10), 6: (7, 10)}
    assert {m: (v["New"], v["Renewal"]) for m, v in rows.items()} == {
        m: (Decimal(n), Decimal(r)) for m, (n, r) in expected.items()
    }
    assert rows[4]["Total"] == Decimal("130.00")
    by_pro = {
        r.month.month: r.values["Total"]
        for r in reports.revenue(filters(shop, product=shop["pro"]))
    }
    assert by_pro == {2: 20, 3: 30, 4: 10, 5: 20, 6: 10}


def test_churn_per_month(shop):
    rows = [(r.month.month, r.values) for r in reports.churn(filters(shop))]
    # Active at the start of each month (started before, not ended before), started in it,
    # churned in it; rate = churned / (active at start + started):
    # Feb 0 + 1 (D) / 0; Mar 1 (D) + 1 (A) / 0; Apr 2 (A, D) + 1 (B) / 1 (D on 5 Apr) = 33.33 %;
    # May 2 (A, B) + 1 (E) / 0; Jun 3 (A, B, E) + 1 (C) / 0.
    assert [
        (m, v["Active at start"], v["Started"], v["Churned"], v["Churn %"]) for m, v in rows
    ] == [
        (2, 0, 1, 0, Decimal("0.00")),
        (3, 1, 1, 0, Decimal("0.00")),
        (4, 2, 1, 1, Decimal("33.33")),
        (5, 2, 1, 0, Decimal("0.00")),
        (6, 3, 1, 0, Decimal("0.00")),
    ]


def test_a_month_with_nobody_active_or_starting_has_no_churn_rate(shop):
    rows = reports.churn(Filters(shop["client"], "EUR", date(2025, 6, 1), date(2025, 8, 31), None))
    assert [r.values["Churn %"] for r in rows] == [None, None, None]


def test_renewal_success_rate(shop):
    rows = {r.month.month: r.values for r in reports.renewal_success(filters(shop))}
    # Mar: D paid 1/1. Apr, May: A 1/1. Jun: A paid, E declined = 1/2 = 50 %. Feb: none due.
    assert rows[2] == {"Due": 0, "Charged": 0, "Success %": None}
    assert rows[3]["Success %"] == rows[4]["Success %"] == Decimal("100.00")
    assert rows[6] == {"Due": 2, "Charged": 1, "Success %": Decimal("50.00")}


def test_upcoming_renewals_30_and_90_days(shop):
    soon = reports.upcoming(filters(shop), now=TODAY)
    # C on 19 Jun (7.00) and A on 10 Jul (10.00); B is next year, E is in Grace.
    assert soon.next_30 == (2, Decimal("17.00"))
    assert soon.next_90 == (2, Decimal("17.00"))
    weeks = {w.isoformat(): (n, amount) for w, n, amount in soon.weeks if n}
    assert weeks == {"2026-06-15": (1, Decimal("7.00")), "2026-07-06": (1, Decimal("10.00"))}
    assert len(soon.weeks) == 13


def test_reports_pages_charts_tables_and_csv(login, shop):
    staff = login(shop["client"], "viewer")
    for page in ("overview", "mrr", "revenue", "churn", "renewals", "upcoming"):
        answer = staff.get(f"/reports/{page}/?start=2026-02-01&end=2026-06-15&currency=EUR")
        assert answer.status_code == 200, page
        html = answer.content.decode()
        assert "vendor/chartjs/chart.umd.min.js" in html  # served from static/, not a CDN
        assert assets_from_elsewhere(html) == []
    overview = staff.get("/reports/mrr/").content.decode()
    assert 'data-testid="kpi-mrr">50.42 EUR' in overview
    assert 'data-testid="kpi-arr">605.00 EUR' in overview
    assert 'canvas data-chart="chart-mrr-product"' in overview  # the MRR chart
    assert "MRR by product (EUR)" in overview
    csv = staff.get(
        "/reports/revenue/revenue.csv?start=2026-02-01&end=2026-06-15&currency=EUR"
    ).content.decode()
    assert csv.splitlines()[0] == "Month,New,Renewal,Item changes,Total"
    assert "2026-04,120.00,10.00,0.00,130.00" in csv.splitlines()
    renewals = staff.get("/reports/upcoming/").content.decode()
    assert 'data-testid="kpi-expected-in-30-days">17.00 EUR' in renewals


def test_bad_filters_show_a_message_and_defaults(login, shop):
    staff = login(shop["client"], "viewer")
    answer = staff.get("/reports/churn/?start=2026-06-01&end=2026-01-01&currency=XXX")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "were not applied" in html and "Must be on or after From." in html
    assert staff.get("/reports/nope/").status_code == 404
    assert staff.get("/reports/churn/nope.csv").status_code == 404


def test_reports_see_only_their_own_client(login, shop, sm1):
    other = ProductFactory(client=sm1, price=Decimal("99.00"))
    subscribe(sm1, other, at=on(6, 1), email="zed@example.com")
    staff = login(sm1, "viewer")
    html = staff.get("/reports/overview/?currency=EUR").content.decode()
    assert 'data-testid="kpi-active-subscriptions">1<' in html
    html = staff.get("/reports/mrr/?currency=EUR").content.decode()
    assert 'data-testid="kpi-mrr">99.00 EUR' in html
    # Another client's product as a filter is not a choice here.
    answer = staff.get(f"/reports/overview/?product={shop['pro'].pk}")
    assert "Select a valid choice" in answer.content.decode()
