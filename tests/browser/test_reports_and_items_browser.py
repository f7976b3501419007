"""Reports with charts, and an item upgrade with its preview, in a real browser."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from subscriptions.models import Subscription
from tests.browser.conftest import swap
from tests.browser.test_back_office_browser import open_billing_tab_of, sign_in
from tests.conftest import sign_up
from tests.factories import ProductFactory
from tests.subscriptions.test_reports import TODAY, build_shop

pytestmark = pytest.mark.browser


def test_reports_draw_charts_and_follow_the_filters(shoot, page, sm2, clock):
    clock.move_to(TODAY, tick=True)
    build_shop(sm2)
    sign_in(page, sm2, "viewer")
    page.click("nav.mainnav >> text=Reports")
    page.wait_for_selector("canvas[data-drawn='1']")  # Chart.js drew the status chart
    assert page.inner_text("[data-testid=kpi-active-subscriptions]") == "3"
    page.click("nav.tabs >> text=MRR & ARR")
    page.wait_for_selector("[data-testid=kpi-mrr]")
    assert page.inner_text("[data-testid=kpi-mrr]") == "50.42 EUR"
    page.click("nav.tabs >> text=Revenue")
    page.fill("#id_start", "2026-02-01")
    swap(page, "#report-body", lambda: page.click("button:has-text('Show')"))
    page.wait_for_selector("[data-testid=table-revenue] td:has-text('2026-02')")
    page.wait_for_selector("#figure-revenue canvas[data-drawn='1']")
    row = page.inner_text("[data-testid=table-revenue] tbody tr >> nth=2")
    assert row.split() == ["2026-04", "120.00", "10.00", "0.00", "130.00"]
    assert "start=2026-02-01" in page.url  # the filters are in the address, to share
    shoot(page, "reports")


def test_support_previews_then_confirms_an_upgrade(shoot, page, sm2, monthly, clock):
    march_22 = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)
    clock.move_to(datetime(2026, 3, 10, 12, 0, tzinfo=UTC), tick=False)
    sign_up(sm2, monthly, email="ulla@example.com", at=datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    ProductFactory(client=sm2, name="Premium", price=Decimal("25.00"))
    clock.move_to(march_22, tick=True)
    sign_in(page, sm2, "support")
    open_billing_tab_of(page, "ulla@example.com")
    page.click("#subscription-billing >> text=Change product")
    page.select_option("#id_product", label="Premium")
    page.click("button:has-text('Preview charges')")
    page.wait_for_selector("[data-testid=quote]")
    # 15.00 more a month x 19 of 31 days = 9.19 now; 25.00 from 10 April.
    assert page.inner_text("[data-testid=charge-now]").startswith("9.19 EUR")
    assert "25.00 EUR" in page.inner_text("[data-testid=next-total]")
    shoot(page, "item-change-preview")
    page.click("button:has-text('Confirm: change product')")
    page.wait_for_selector("text=9.19 EUR charged now")
    item = Subscription.objects.get(customer__email="ulla@example.com").items.get()
    assert item.product.name == "Premium"
