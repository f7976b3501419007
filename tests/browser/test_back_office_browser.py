"""Staff in a real browser (Playwright + Debian chromium): find, open, act."""

import pytest

from subscriptions.models import Subscription
from tests.browser.conftest import open_tab, swap
from tests.conftest import sign_up
from tests.factories import ProductFactory, StaffFactory

pytestmark = pytest.mark.browser


def sign_in(page, vendor, role):
    staff = StaffFactory(client=vendor, role=role)
    page.goto("/login/")
    page.fill("#id_username", staff.user.username)
    page.fill("#id_password", "pw-123456")
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/purchases/")


def open_billing_tab_of(page, email):
    swap(page, "#purchase-results", lambda: page.fill("input[name=q]", email))
    rows = page.locator("#purchase-results tbody tr")
    assert rows.count() >= 1 and all(email in row for row in rows.all_inner_texts())
    page.click("#purchase-results tbody tr >> nth=0 >> a")
    page.wait_for_selector("h1:has-text('Purchase')")
    open_tab(page, "Subscription Billing")


def test_support_switches_an_sm2_subscription_to_manual(shoot, page, sm2, monthly):
    for n in range(3):
        sign_up(sm2, monthly, email=f"other{n}@example.com")
    sub = sign_up(sm2, monthly, email="dana@example.com").subscriptions[0]
    sign_in(page, sm2, "support")
    shoot(page, "purchase-search", full_page=False)
    open_billing_tab_of(page, "dana@example.com")
    assert page.inner_text("[data-testid=renewal-type]") == "Automatic"
    page.click("#subscription-billing >> text=Switch to Manual Renewal")
    page.wait_for_selector(f".confirm:has-text('Switch S{sub.pk} to manual renewal?')")
    swap(
        page, "#subscription-billing", lambda: page.click("text=Confirm: Switch to Manual Renewal")
    )
    page.wait_for_selector("text=Switch to Manual Renewal: done.")
    assert page.inner_text("[data-testid=renewal-type]") == "Manual"
    assert page.inner_text("[data-testid=sub-status]") == "Active"
    shoot(page, "subscription-billing")
    # The next confirmation takes the focus, and the message about the last
    # action goes: it is not about what is being confirmed now.
    page.click("#subscription-billing >> text=Switch to Automatic Renewal")
    page.wait_for_selector("[role=dialog]:has-text('automatic renewal')")
    assert page.evaluate("document.activeElement.getAttribute('role')") == "dialog"
    assert page.locator("#subscription-billing .messages").count() == 0
    open_tab(page, "History")
    page.wait_for_selector("#history-table")
    row = page.inner_text("#history-table tbody tr >> nth=0")
    assert "Renewal type changed from Automatic to Manual." in row
    assert "Renewal: Automatic → Manual" in row  # the change in words
    code = page.get_attribute("#history-table tbody tr >> nth=0 >> td >> nth=3 >> span", "title")
    assert code == "Event code: renTypeUpd"  # the code, on hover
    shoot(page, "history")
    open_tab(page, "Overview")
    page.wait_for_selector(".facts")
    shoot(page, "purchase-viewer")
    assert Subscription.objects.get(pk=sub.pk).renewal_type == "Manual"


def test_support_puts_an_sm1_subscription_in_await_reinstate(page, sm1):
    product = ProductFactory(client=sm1, name="Backup Pro")
    sub = sign_up(sm1, product, email="eli@example.com").subscriptions[0]
    sign_in(page, sm1, "support")
    open_billing_tab_of(page, "eli@example.com")
    assert page.locator("text=Switch to Manual Renewal").count() == 0
    page.click("#subscription-billing >> text=Await Reinstate")
    swap(page, "#subscription-billing", lambda: page.click("text=Confirm: Await Reinstate"))
    page.wait_for_selector("text=Await Reinstate: done.")
    assert page.inner_text("[data-testid=sub-status]") == "Deactivated"
    assert "Awaiting reinstate" in page.inner_text("#subscription-billing table >> nth=0")
    open_tab(page, "History")
    page.wait_for_selector("#history-table")
    assert "Await Reinstate: renews only when the customer confirms." in page.inner_text(
        "#history-table"
    )
    assert Subscription.objects.get(pk=sub.pk).status == "Deactivated"


def test_a_viewer_sees_no_action_buttons(page, sm2, monthly):
    sign_up(sm2, monthly, email="fay@example.com")
    sign_in(page, sm2, "viewer")
    open_billing_tab_of(page, "fay@example.com")
    assert page.locator("#subscription-billing a.btn").count() == 0
    open_tab(page, "History")
    page.wait_for_selector("#history-table")
    assert page.locator("text=Add note").count() == 0


def test_checkout_with_the_box_unticked_creates_a_manual_subscription(shoot, page, sm2, monthly):
    page.goto(f"/checkout/{sm2.slug}/")
    page.fill(f"input[name=qty_{monthly.pk}]", "1")
    page.fill("#id_email", "gus@example.com")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry_month", "12")
    page.fill("#id_expiry_year", "2099")
    page.uncheck("#id_confirm_auto_renewal")
    shoot(page, "checkout")
    page.click("text=Buy now")
    page.wait_for_selector("text=Thank you!")
    assert "manual renewal" in page.inner_text("main")
    sub = Subscription.objects.get(customer__email="gus@example.com")
    assert (sub.status, sub.renewal_type) == ("Active", "Manual")


def test_staff_page_through_the_subscriptions_with_next_and_previous(page, sm2, monthly):
    subs = [sign_up(sm2, monthly, email=f"p{n}@example.com").subscriptions[0] for n in range(27)]
    newest_first = sorted((s.pk for s in subs), reverse=True)
    sign_in(page, sm2, "viewer")
    page.goto("/subscriptions/")
    first_rows = page.locator("#subscription-results tbody tr").all_inner_texts()
    assert first_rows[0].startswith(f"S{newest_first[0]}") and len(first_rows) == 25
    swap(page, "#subscription-results", lambda: page.click("text=Next ›"))
    page.wait_for_selector("#subscription-results .pagination >> text=Page 2")
    rows = page.locator("#subscription-results tbody tr").all_inner_texts()
    assert [r.split()[0] for r in rows] == [f"S{pk}" for pk in newest_first[25:]]
    assert f"after={newest_first[24]}" in page.url  # the address says where it continues
    swap(page, "#subscription-results", lambda: page.click("text=‹ Previous"))
    page.wait_for_selector("#subscription-results .pagination >> text=Page 1")
    assert page.locator("#subscription-results tbody tr").all_inner_texts() == first_rows
