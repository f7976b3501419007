"""The Refund page, documents, chargebacks (staff and the gateway's callback),
the portal's credit notes and the refunds report (docs/documents.md)."""

import hashlib
import hmac
import json
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings

from commerce.models import Document, Purchase
from customers.portal import make_token
from subscriptions import reports, services
from subscriptions.reports import Filters
from tests.conftest import STAFF, T0, fresh, sign_up
from tests.factories import ProductFactory


def test_support_previews_then_confirms_a_partial_refund(login, sm2, monthly):
    result = sign_up(sm2, monthly, quantity=3)  # 30.00 EUR, no VAT at this client
    staff = login(sm2, "support")
    url = f"/purchases/{result.purchase.pk}/refund/"
    form = staff.get(url)
    assert form.status_code == 200 and "30.00 EUR left to refund" in form.content.decode()
    key = form.context["form"].initial["key"]
    data = {"how": "amount", "amount": "12.00", "reason": "goodwill", "note": "", "key": key}
    preview = staff.post(url, {**data, "step": "preview"}).content.decode()
    assert 'data-testid="preview-total"><b>12.00 EUR</b>' in preview
    assert "keep their statuses" in preview
    assert not Document.objects.filter(kind="credit_note").exists()  # nothing yet
    # Changed after the preview: previewed again, not refunded.
    changed = staff.post(url, {**data, "amount": "13.00", "step": "confirm", "previewed": "12.00"})
    assert 'data-testid="preview-total"><b>13.00 EUR</b>' in changed.content.decode()
    assert not Document.objects.filter(kind="credit_note").exists()
    done = staff.post(url, {**data, "step": "confirm", "previewed": "12.00"}, follow=True)
    assert "Refunded 12.00 EUR; credit note CN-000001." in done.content.decode()
    assert Purchase.objects.get(pk=result.purchase.pk).refunded_amount == Decimal("12.00")
    # A second click on the same form (same key) refunds nothing more.
    staff.post(url, {**data, "step": "confirm", "previewed": "12.00"})
    assert Purchase.objects.get(pk=result.purchase.pk).refunded_amount == Decimal("12.00")
    tab = staff.get(f"/purchases/{result.purchase.pk}/payments/").content.decode()
    assert "Credit note CN-000001" in tab and "Goodwill" in tab
    doc = Document.objects.get(kind="credit_note")
    assert staff.get(f"/documents/{doc.pk}.pdf")["Content-Type"] == "application/pdf"
    assert "CN-000001" in staff.get(f"/documents/{doc.pk}/").content.decode()
    invoice = staff.get(f"/purchases/{result.purchase.pk}/invoice.pdf")
    assert invoice["Content-Type"] == "application/pdf"
    assert 'filename="INV-000001.pdf"' in invoice["Content-Disposition"]


def test_a_second_click_on_a_full_refund_says_it_is_done(login, sm2, monthly):
    result = sign_up(sm2, monthly)  # 10.00
    staff = login(sm2, "support")
    url = f"/purchases/{result.purchase.pk}/refund/"
    key = staff.get(url).context["form"].initial["key"]
    data = {"how": "full", "reason": "requested", "key": key, "step": "confirm"}
    for _ in range(2):
        page = staff.post(url, {**data, "previewed": "10.00"}, follow=True).content.decode()
        assert "Refunded 10.00 EUR; credit note CN-000001." in page
    assert Document.objects.filter(kind="credit_note").count() == 1


def test_bad_refund_input_is_shown_and_refused(login, sm2, monthly):
    result = sign_up(sm2, monthly)  # 10.00
    staff = login(sm2, "support")
    url = f"/purchases/{result.purchase.pk}/refund/"
    key = staff.get(url).context["form"].initial["key"]
    too_much = staff.post(
        url, {"how": "amount", "amount": "10.01", "reason": "other", "key": key, "step": "preview"}
    )
    assert too_much.status_code == 400
    assert "Refund between 0.01 and 10.00 EUR" in too_much.content.decode()
    empty = staff.post(url, {"how": "amount", "reason": "other", "key": key, "step": "preview"})
    assert "Enter the amount to refund." in empty.content.decode()
    assert not Document.objects.filter(kind="credit_note").exists()


def test_who_may_refund(login, sm2, sm1, monthly):
    result = sign_up(sm2, monthly)
    viewer = login(sm2, "viewer")
    assert viewer.get(f"/purchases/{result.purchase.pk}/refund/").status_code == 403
    other = login(sm1, "admin")
    assert other.get(f"/purchases/{result.purchase.pk}/refund/").status_code == 404
    assert other.get(f"/purchases/{result.purchase.pk}/invoice.pdf").status_code == 404
    pending = sign_up(sm2, monthly, invoice=True, email="p@example.com")
    staff = login(sm2, "support")
    answer = staff.get(f"/purchases/{pending.purchase.pk}/refund/", follow=True)
    assert "only paid purchases can be refunded" in answer.content.decode()


def test_the_portal_lists_credit_notes_and_serves_only_its_own(client, sm2, monthly):
    mine = sign_up(sm2, monthly, email="me@example.com")
    theirs = sign_up(sm2, monthly, email="them@example.com")
    note = services.refund(purchase=mine.purchase, amount=Decimal("4.00"), actor=STAFF)
    other = services.refund(purchase=theirs.purchase, amount=Decimal("1.00"), actor=STAFF)
    client.get(f"/portal/enter/{make_token(mine.purchase.customer)}/")
    page = client.get("/portal/invoices/").content.decode()
    assert "CN-000001" in page and "4.00 EUR" in page and "CN-000002" not in page
    pdf = client.get(f"/portal/documents/{note.pk}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert client.get(f"/portal/documents/{other.pk}.pdf").status_code == 404
    invoice = client.get(f"/portal/invoices/{mine.purchase.pk}.pdf")
    assert invoice.status_code == 200 and invoice.content.startswith(b"%PDF")
    assert client.get(f"/portal/invoices/{theirs.purchase.pk}.pdf").status_code == 404


def test_staff_record_a_chargeback(login, sm2, monthly):
    result = sign_up(sm2, monthly)
    staff = login(sm2, "support")
    url = f"/purchases/{result.purchase.pk}/chargeback/"
    assert "Record a chargeback on purchase" in staff.get(url).content.decode()
    done = staff.post(url, follow=True).content.decode()
    assert "Chargeback of 10.00 EUR recorded" in done
    assert Purchase.objects.get(pk=result.purchase.pk).status == "chargeback"
    assert fresh(result.subscriptions[0]).status == "Deactivated"


def signed(body: bytes) -> str:
    key = settings.GATEWAY_WEBHOOK_SECRET.encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def test_the_gateway_reports_a_chargeback(client, sm2, monthly):
    result = sign_up(sm2, monthly)
    body = json.dumps(
        {"type": "charge.disputed", "reference": result.purchase.gateway_reference}
    ).encode()

    def send(payload, signature):
        return client.post(
            "/gateway/events/",
            payload,
            content_type="application/json",
            headers={"X-Gateway-Signature": signature},
        )

    assert send(body, "sha256=" + "0" * 64).status_code == 401
    assert Purchase.objects.get(pk=result.purchase.pk).status == "paid"
    assert send(body, signed(body)).json() == {"status": "recorded"}
    assert Purchase.objects.get(pk=result.purchase.pk).status == "chargeback"
    assert fresh(result.subscriptions[0]).status == "Deactivated"
    assert send(body, signed(body)).json() == {"status": "already recorded"}
    unknown = json.dumps({"type": "charge.disputed", "reference": "tg_nope"}).encode()
    assert send(unknown, signed(unknown)).status_code == 404
    assert send(b"nonsense", signed(b"nonsense")).status_code == 400


def test_refunds_and_chargebacks_per_month_and_net_revenue(sm2, clock):
    """January (31 Jan): two sign-ups, 30.00 and 10.00 = 40.00 billed, net 40.00.
    February: a refund of 12.00 on the 5th, the 10.00 one charged back on the
    6th (its subscription ends), the 30.00 one renewed on the 28th = 30.00
    billed; net 30.00 - 12.00 - 10.00 = 8.00."""
    plan = ProductFactory(client=sm2, price=Decimal("30.00"))
    small = ProductFactory(client=sm2, price=Decimal("10.00"))
    big = sign_up(sm2, plan, email="big@example.com")
    little = sign_up(sm2, small, email="little@example.com")
    services.refund(
        purchase=big.purchase, amount=Decimal("12.00"), actor=STAFF, at=T0 + timedelta(days=5)
    )
    services.chargeback(purchase=little.purchase, actor=STAFF, at=T0 + timedelta(days=6))
    services.renew_due(subscription=big.subscriptions[0], at=T0 + timedelta(days=28))
    f = Filters(sm2, "EUR", date(2026, 1, 1), date(2026, 2, 28), None)
    january, february = reports.money_back(f)
    assert january.values == {
        "Refunds": 0,
        "Refunded": Decimal("0.00"),
        "Chargebacks": 0,
        "Charged back": Decimal("0.00"),
        "Net revenue": Decimal("40.00"),
    }
    assert february.values == {
        "Refunds": 1,
        "Refunded": Decimal("12.00"),
        "Chargebacks": 1,
        "Charged back": Decimal("10.00"),
        "Net revenue": Decimal("8.00"),
    }
