"""Refunds and documents in the Subscription API (docs/api.md, docs/documents.md):
400 for bad input, 404 for another client's purchase, 409 for more than is
left, Idempotency-Key refunds once, the PDF downloads."""

import io
from decimal import Decimal

from pypdf import PdfReader

from commerce.models import Document, GatewayCharge, Purchase
from tests.conftest import sign_up
from tests.factories import ProductFactory


def test_refund_part_then_download_the_credit_note(api, sm2, monthly):
    result = sign_up(sm2, monthly, quantity=3)  # 3 x 10.00 = 30.00
    answer = api.post(
        "refundpurchase",
        {
            "PurchaseId": result.purchase.pk,
            "Lines": [{"RunningNumber": 1, "Quantity": 1}],
            "Reason": "goodwill",
        },
        key="r-1",
    )
    assert answer.status_code == 200, answer.json()
    note = answer.json()["CreditNote"]
    assert (note["Kind"], note["Number"], note["Total"]) == ("CreditNote", "CN-000001", "10.00")
    again = api.post(
        "refundpurchase",
        {
            "PurchaseId": result.purchase.pk,
            "Lines": [{"RunningNumber": 1, "Quantity": 1}],
            "Reason": "goodwill",
        },
        key="r-1",
    )
    assert again.json()["CreditNote"]["DocumentId"] == note["DocumentId"]
    assert GatewayCharge.objects.filter(message__startswith="Refund of").count() == 1
    listed = api.get("getpurchasedocuments", purchaseId=result.purchase.pk).json()
    assert [d["Number"] for d in listed["Documents"]] == ["CN-000001", "INV-000001"]
    pdf = api.get("getdocumentpdf", documentId=note["DocumentId"])
    assert pdf["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "CN-000001" in text and "10.00 EUR" in text


def test_refund_answers_400_404_and_409(api, sm2, sm1, monthly):
    result = sign_up(sm2, monthly)  # 10.00
    bad = api.post("refundpurchase", {"PurchaseId": "x", "Amount": -1})
    assert bad.status_code == 400 and set(bad.json()["Errors"]) == {"PurchaseId", "Amount"}
    too_much = api.post("refundpurchase", {"PurchaseId": result.purchase.pk, "Amount": "10.01"})
    assert too_much.status_code == 409
    assert "Refund between 0.01 and 10.00 EUR" in too_much.json()["ResultMessage"]
    theirs = sign_up(sm1, ProductFactory(client=sm1), email="t@example.com")
    other = api.post("refundpurchase", {"PurchaseId": theirs.purchase.pk})
    assert other.status_code == 404
    assert api.get("getpurchasedocuments", purchaseId=theirs.purchase.pk).status_code == 404
    assert Purchase.objects.get(pk=result.purchase.pk).refunded_amount == Decimal("0.00")
    assert not Document.objects.filter(kind="credit_note").exists()
    full = api.post("refundpurchase", {"PurchaseId": result.purchase.pk})
    assert full.status_code == 200 and full.json()["CreditNote"]["Total"] == "10.00"
    again = api.post("refundpurchase", {"PurchaseId": result.purchase.pk})
    assert again.status_code == 409  # nothing is left: already refunded


def test_a_long_idempotency_key_refunds_once(api, sm2, monthly):
    result = sign_up(sm2, monthly)
    key = "k" * 200  # the longest the API takes
    for _ in range(2):
        answer = api.post(
            "refundpurchase", {"PurchaseId": result.purchase.pk, "Amount": "1.00"}, key=key
        )
        assert answer.status_code == 200, answer.json()
    assert Purchase.objects.get(pk=result.purchase.pk).refunded_amount == Decimal("1.00")
