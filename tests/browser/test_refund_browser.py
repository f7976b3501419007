"""Staff refund part of a renewal from the Purchase viewer: preview, confirm,
download the credit note PDF; the customer finds it in the portal."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader

from commerce.models import Document, Purchase
from customers.portal import make_token
from subscriptions import services
from tests.browser.conftest import open_tab
from tests.browser.test_back_office_browser import sign_in
from tests.conftest import T0, sign_up

pytestmark = pytest.mark.browser


def test_support_refunds_part_of_a_renewal_and_the_customer_gets_the_credit_note(
    shoot, page, sm2, monthly
):
    sm2.vat_rate = Decimal("19.00")
    sm2.save()
    result = sign_up(sm2, monthly, email="rhea@example.com", quantity=2)  # 2 x 10.00
    services.renew_due(subscription=result.subscriptions[0], at=T0 + timedelta(days=28))
    renewal = Purchase.objects.get(category="renewal")
    sign_in(page, sm2, "support")
    page.goto(f"/purchases/{renewal.pk}/")
    page.click("nav.actionbar >> text=Refund…")
    page.wait_for_selector("h1:has-text('Refund purchase')")
    page.check("input[name=how][value=lines]")
    page.fill("input[name=qty_1]", "1")
    page.select_option("select[name=reason]", "not_delivered")
    page.fill("input[name=note]", "Seat unused in March")
    page.click("button:has-text('Preview the refund')")
    page.wait_for_selector("[data-testid=refund-preview]")
    # One seat: 10.00 gross = 8.40 net + 1.60 VAT (19 %).
    assert page.inner_text("[data-testid=preview-total]") == "10.00 EUR"
    assert page.inner_text("[data-testid=preview-net]") == "8.40 EUR"
    assert page.inner_text("[data-testid=preview-vat]") == "1.60 EUR"
    assert "keep their statuses" in page.inner_text("[data-testid=preview-effect]")
    shoot(page, "refund-preview")
    page.click("button:has-text('Confirm: refund 10.00 EUR')")
    page.wait_for_selector("text=Refunded 10.00 EUR; credit note CN-000001.")
    open_tab(page, "Payments")
    row = page.inner_text("[data-testid=documents] tbody tr:has-text('CN-000001')")
    assert "Service not delivered — Seat unused in March" in row and "10.00 EUR" in row
    with page.expect_download() as download:
        page.click("[data-testid=documents] tr:has-text('CN-000001') >> text=PDF")
    reader = PdfReader(io.BytesIO(open(download.value.path(), "rb").read()))
    text = reader.pages[0].extract_text()
    assert "Credit note" in text and "CN-000001" in text and "10.00 EUR" in text
    assert Document.objects.get(kind="credit_note").total == Decimal("10.00")
    # The customer, in the portal.
    page.goto(f"/portal/enter/{make_token(renewal.customer)}/")
    page.click("nav >> text=Invoices")
    page.wait_for_selector("[data-testid=credit-notes]")
    assert "CN-000001" in page.inner_text("[data-testid=credit-notes]")
