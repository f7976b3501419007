"""The customer portal in a real browser: from the e-mail link to the change
in the back office's History, on a phone-sized screen."""

import re

import pytest

from customers.emails import send_pending
from subscriptions.models import Subscription
from tests.browser.conftest import open_tab
from tests.browser.test_back_office_browser import open_billing_tab_of, sign_in
from tests.conftest import sent_to, sign_up

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def link_in_latest_email(to):
    send_pending()  # what the e-mail worker does
    body = sent_to(to).body
    return re.search(r"http://127\.0\.0\.1:8000(/portal/enter/\S+/)", body).group(1)


def test_customer_turns_off_auto_renewal_and_staff_see_it_in_history(shoot, page, sm2, monthly):
    sub = sign_up(sm2, monthly, email="pia@example.com").subscriptions[0]
    sign_up(sm2, monthly, email="someone@example.com")
    page.set_viewport_size(PHONE)
    page.goto(link_in_latest_email("pia@example.com"))
    page.wait_for_selector(f"[data-testid=sub-{sub.pk}]")
    assert "Automatic" in page.inner_text("[data-testid=renewal-type]")
    shoot(page, "portal-phone")
    page.click("text=Turn off automatic renewal")
    effect = page.inner_text("[data-testid=effect]")
    assert f"stays active until {sub.next_billing_date:%d %B %Y}" in effect
    page.click("button:has-text('Yes, turn off automatic renewal')")
    page.wait_for_selector("text=Automatic renewal is off")
    assert "Manual" in page.inner_text("[data-testid=renewal-type]")
    # Typing another customer's subscription id into the address gets nothing.
    other = Subscription.objects.get(customer__email="someone@example.com")
    answer = page.goto(f"/portal/subscriptions/{other.pk}/renewal-off/")
    assert answer.status == 404
    # Staff see the change, made by the customer, in the History tab.
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, sm2, "viewer")
    open_billing_tab_of(page, "pia@example.com")
    assert page.inner_text("[data-testid=renewal-type]") == "Manual"
    open_tab(page, "History")
    page.wait_for_selector("#history-table")
    row = page.inner_text("#history-table tbody tr >> nth=0")
    assert "Renewal type changed" in row and "pia@example.com" in row
    assert "Renewal: Automatic → Manual" in row


def test_a_tampered_or_expired_link_shows_a_clear_page(page, sm2, monthly, clock, settings):
    sign_up(sm2, monthly, email="olle@example.com")
    link = link_in_latest_email("olle@example.com")
    answer = page.goto(link[:-3] + "xx/")
    assert answer.status == 403
    assert page.inner_text("[data-testid=problem]") == "This link is not valid"
    settings.PORTAL_LINK_MAX_AGE = 0
    clock.shift(5)
    answer = page.goto(link)
    assert answer.status == 403
    assert page.inner_text("[data-testid=problem]") == "This link has expired"
