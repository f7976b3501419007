"""A sandbox client's test clock in a real browser: checkout, advance past the
billing date, see the renewal, reminder and history; decline the card, advance
through grace and hold, see the subscription Deactivated (issue 10)."""

import re
from decimal import Decimal

import pytest

from customers.emails import send_pending
from customers.models import CustomerEmail
from subscriptions import services
from tests.browser.conftest import open_tab, swap
from tests.browser.test_back_office_browser import open_billing_tab_of, sign_in
from tests.conftest import STAFF, sent_to, sign_up
from tests.factories import ClientFactory, ProductFactory

pytestmark = pytest.mark.browser


def billing_of(page, email):
    page.goto("/purchases/")
    open_billing_tab_of(page, email)


def advance(page, by):
    page.goto("/settings/")
    page.click(f"#test-clock button:has-text('{by}')")
    page.wait_for_selector("text=The clock is moving to")


def advance_to(page, day):
    page.goto("/settings/")
    page.fill("#test-clock input[name=to]", day)
    page.click("#test-clock button:has-text('Advance to date')")
    page.wait_for_selector("text=The clock is moving to")


def test_walk_a_subscription_through_its_life_on_the_sandbox_clock(shoot, page, db):
    sandbox = ClientFactory(name="Sandbox Shop", slug="sandbox-shop", is_sandbox=True)
    plan = ProductFactory(client=sandbox, name="Sandbox plan", price=Decimal("12.00"))
    page.goto(f"/checkout/{sandbox.slug}/")
    page.fill(f"input[name=qty_{plan.pk}]", "1")
    page.fill("#id_email", "tess@example.com")
    page.fill("#id_card_number", "4242 4242 4242 4242")
    page.fill("#id_expiry_month", "12")
    page.fill("#id_expiry_year", "2099")
    page.click("text=Buy now")
    page.wait_for_selector("text=Thank you!")

    sign_in(page, sandbox, "admin")
    assert "Sandbox clock: 2026-01-31" in page.inner_text("[data-testid=sandbox-clock]")
    billing_of(page, "tess@example.com")
    assert page.inner_text("[data-testid=next-billing-date]") == "2026-02-28"
    advance(page, "+ 1 month")  # 31 Jan -> 28 Feb, one day at a time
    assert "Sandbox clock: 2026-02-28" in page.inner_text("[data-testid=sandbox-clock]")
    billing_of(page, "tess@example.com")
    billing = page.inner_text("#subscription-billing")
    assert "(Renewal)" in billing and "Paid" in billing  # the renewal purchase
    assert page.inner_text("[data-testid=next-billing-date]") == "2026-03-31"
    open_tab(page, "E-mails")
    page.wait_for_selector("text=Renewal reminder")
    open_tab(page, "History")
    page.wait_for_selector("#history-table")
    assert "Renewed" in page.inner_text("#history-table")
    shoot(page, "sandbox-clock-history")

    # The customer changes to a card that declines (in the portal, from an e-mail link).
    send_pending()  # what the e-mail worker does; links are made as e-mails are sent
    body = sent_to("tess@example.com").body
    page.goto(re.search(r"http://127\.0\.0\.1:8000(/portal/enter/\S+/)", body).group(1))
    page.click("nav >> text=Card")
    page.fill("#id_number", "4000000000000002")
    page.fill("#id_expiry_month", "12")
    page.fill("#id_expiry_year", "2099")
    page.click("button:has-text('Save card')")
    page.wait_for_selector("text=are now billed to Visa •••• 0002")

    sign_in(page, sandbox, "admin")
    advance_to(page, "2026-04-04")  # the 31 Mar renewal is declined: Grace
    billing_of(page, "tess@example.com")
    assert page.inner_text("[data-testid=sub-status]") == "Grace"
    advance_to(page, "2026-04-20")  # 7 days of grace, then 7 of hold
    billing_of(page, "tess@example.com")
    assert page.inner_text("[data-testid=sub-status]") == "Deactivated"
    open_tab(page, "History")
    page.wait_for_selector("#history-table")
    history = page.inner_text("#history-table")
    assert "Payment overdue (Grace)" in history and "On hold" in history
    assert "Status: Hold → Deactivated" in history


def test_an_invoice_renewal_is_issued_at_the_billing_date_and_marked_paid(shoot, page, db):
    """SM 2.0, manual renewal, paying by invoice: at the billing date the
    renewal invoice appears on the Billing tab; Mark as paid renews it."""
    sandbox = ClientFactory(name="Invoice Sandbox", slug="invoice-sandbox", is_sandbox=True)
    plan = ProductFactory(client=sandbox, name="Invoice plan", price=Decimal("30.00"))
    result = sign_up(sandbox, plan, invoice=True, auto=False, email="ivo@example.com")
    services.mark_purchase_paid(purchase=result.purchase, actor=STAFF)
    sub = result.subscriptions[0]

    sign_in(page, sandbox, "support")
    billing_of(page, "ivo@example.com")
    assert page.inner_text("[data-testid=next-billing-date]") == "2026-02-28"
    assert "Mark as paid" not in page.inner_text("#subscription-billing")
    sign_in(page, sandbox, "admin")
    advance(page, "+ 1 month")  # to the billing date: the renewal invoice is issued
    billing_of(page, "ivo@example.com")
    billing = page.inner_text("#subscription-billing")
    assert "(Renewal)" in billing and "Pending" in billing and "30.00" in billing
    assert page.inner_text("[data-testid=sub-status]") == "Grace"
    page.click("#subscription-billing >> text=Mark as paid")
    page.wait_for_selector(".confirm:has-text('Record the offline payment')")
    swap(page, "#subscription-billing", lambda: page.click("text=Confirm: Mark as paid"))
    page.wait_for_selector("text=Mark as paid: done.")
    assert page.inner_text("[data-testid=sub-status]") == "Active"
    # Paid after the billing date: the payment starts the new interval.
    assert page.inner_text("[data-testid=next-billing-date]") == "2026-03-28"
    sub.refresh_from_db()
    assert (sub.status, sub.last_interval_no, sub.renewal_type) == ("Active", 2, "Manual")
    kinds = list(CustomerEmail.objects.filter(subscription=sub).values_list("kind", flat=True))
    assert "invoice" in kinds and "payment_failed" not in kinds
