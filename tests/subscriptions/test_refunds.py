"""Refunds, credit notes and invoices (docs/documents.md), with amounts worked
out by hand. The client charges 19 % VAT, included in its prices.

The purchase: Seats 30.00 x 2 = 60.00 and Support 12.50 x 1 = 12.50,
total 72.50 EUR."""

import io
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from pypdf import PdfReader

from commerce import documents
from commerce.gateway import CARD_REFUND_DECLINED
from commerce.models import Document, GatewayCharge, Purchase
from customers.emails import send_pending
from customers.models import CustomerEmail
from subscriptions import services
from subscriptions.errors import DomainError, RefundDeclined, TransitionNotAllowed
from subscriptions.models import HistoryEntry
from tests.conftest import STAFF, card, fresh, notification_types, sent_to
from tests.factories import ProductFactory


@pytest.fixture
def shop(sm2):
    sm2.vat_rate = Decimal("19.00")
    sm2.save()
    seats = ProductFactory(client=sm2, name="Seats", price=Decimal("30.00"))
    support = ProductFactory(client=sm2, name="Support", price=Decimal("12.50"))
    return sm2, seats, support


def buy(shop, number="4242424242424242", email="rea@example.com"):
    client, seats, support = shop
    return services.sign_up(
        client=client,
        customer=services.CustomerInput(email=email),
        lines=[services.Line(seats, 2), services.Line(support, 1)],
        payment=card(number),
        confirm_auto_renewal=True,
        actor=STAFF,
    )


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_partial_refund_of_one_line_with_vat(shop):
    result = buy(shop)
    assert result.purchase.total == Decimal("72.50")
    note = services.refund(
        purchase=result.purchase, quantities={1: 1}, reason="unsatisfied", actor=STAFF
    )
    # One seat: 30.00 gross; net 30.00 / 1.19 = 25.2101 -> 25.21; VAT 30.00 - 25.21 = 4.79.
    assert (note.total, note.net, note.vat) == (Decimal("30.00"), Decimal("25.21"), Decimal("4.79"))
    assert note.display_number == "CN-000001"
    assert note.lines == [
        {
            "running_no": "1",
            "description": "Seats",
            "quantity": "1",
            "unit_price": "30.00",
            "amount": "30.00",
        }
    ]
    purchase = Purchase.objects.get(pk=result.purchase.pk)
    assert (purchase.status, purchase.refunded_amount) == ("partially_refunded", Decimal("30.00"))
    sub = result.subscriptions[0]
    assert fresh(sub).status == "Active"  # a partial refund changes no status
    assert "PartialRefundNotification" in notification_types(sub)
    assert HistoryEntry.objects.filter(subscription=sub, event_code="partialRefund").exists()
    refund = GatewayCharge.objects.get(message=f"Refund of {purchase.gateway_reference}")
    assert refund.amount == Decimal("30.00")
    # The customer's e-mail says so and carries the credit note.
    send_pending()
    mail = sent_to("rea@example.com")
    assert "We have refunded 30.00 EUR on order" in mail.body
    assert "Credit note CN-000001 is attached." in mail.body
    name, data, kind = mail.attachments[0]
    assert (name, kind) == ("CN-000001.pdf", "application/pdf")
    text = pdf_text(data)
    assert "Credit note" in text and "CN-000001" in text and "30.00 EUR" in text


def test_more_than_is_left_is_refused_and_changes_nothing(shop):
    result = buy(shop)
    services.refund(purchase=result.purchase, quantities={1: 1}, actor=STAFF)
    # 72.50 - 30.00 = 42.50 left.
    with pytest.raises(TransitionNotAllowed, match="Refund between 0.01 and 42.50 EUR"):
        services.refund(purchase=result.purchase, amount=Decimal("42.51"), actor=STAFF)
    with pytest.raises(TransitionNotAllowed, match=r"Line 1 \(Seats\) has 1 left to refund"):
        services.refund(purchase=result.purchase, quantities={1: 2}, actor=STAFF)
    purchase = Purchase.objects.get(pk=result.purchase.pk)
    assert purchase.refunded_amount == Decimal("30.00")
    assert Document.objects.filter(kind="credit_note").count() == 1
    # The rest: a full refund now, which ends the subscription.
    last = services.refund(purchase=result.purchase, actor=STAFF)
    assert (last.total, last.net, last.vat) == (Decimal("42.50"), Decimal("35.71"), Decimal("6.79"))
    assert last.display_number == "CN-000002"
    assert Purchase.objects.get(pk=purchase.pk).status == "refunded"
    sub = fresh(result.subscriptions[0])
    assert sub.status == "Deactivated"
    assert "RefundNotification" in notification_types(sub)
    with pytest.raises(TransitionNotAllowed, match="only paid purchases can be refunded"):
        services.refund(purchase=result.purchase, amount=Decimal("1.00"), actor=STAFF)


def test_the_same_key_refunds_once(shop):
    result = buy(shop)
    first = services.refund(purchase=result.purchase, amount=Decimal("5.00"), key="k1", actor=STAFF)
    again = services.refund(purchase=result.purchase, amount=Decimal("5.00"), key="k1", actor=STAFF)
    assert first.pk == again.pk
    assert Purchase.objects.get(pk=result.purchase.pk).refunded_amount == Decimal("5.00")
    assert GatewayCharge.objects.filter(message__startswith="Refund of").count() == 1


def test_a_refund_the_gateway_declines_records_nothing(shop):
    result = buy(shop, number=CARD_REFUND_DECLINED)
    sub = result.subscriptions[0]
    history, notes = HistoryEntry.objects.count(), notification_types(sub)
    with pytest.raises(RefundDeclined, match="The card issuer refused the refund"):
        services.refund(purchase=result.purchase, actor=STAFF)
    purchase = Purchase.objects.get(pk=result.purchase.pk)
    assert (purchase.status, purchase.refunded_amount) == ("paid", Decimal("0.00"))
    assert not Document.objects.filter(kind="credit_note").exists()
    assert HistoryEntry.objects.count() == history and notification_types(sub) == notes
    assert fresh(sub).status == "Active"
    # The number was not used: the next credit note of the client is CN-000001.
    other = buy(shop, email="sam@example.com")
    assert services.refund(purchase=other.purchase, actor=STAFF).display_number == "CN-000001"


def test_an_unpaid_purchase_cannot_be_refunded(shop):
    client, seats, _ = shop
    pending = services.sign_up(
        client=client,
        customer=services.CustomerInput(email="ivy@example.com"),
        lines=[services.Line(seats)],
        payment=services.InvoiceInput(),
        confirm_auto_renewal=True,
        actor=STAFF,
    )
    with pytest.raises(TransitionNotAllowed, match="is Pending; only paid purchases"):
        services.refund(purchase=pending.purchase, actor=STAFF)


def test_invoices_are_issued_once_with_the_receipt_and_numbered_per_client(shop, sm1):
    first, second = buy(shop), buy(shop, email="sam@example.com")
    send_pending()
    receipt = sent_to("rea@example.com")
    assert receipt.attachments[0][0] == "INV-000001.pdf"
    text = pdf_text(receipt.attachments[0][1])
    # 72.50 gross: net 72.50 / 1.19 = 60.92; VAT 11.58.
    assert "INV-000001" in text and "60.92 EUR" in text and "11.58 EUR" in text
    assert "72.50 EUR" in text
    assert sent_to("sam@example.com").attachments[0][0] == "INV-000002.pdf"
    assert documents.invoice_for(first.purchase).number == 1  # issued once
    assert documents.invoice_for(second.purchase).number == 2
    other = ProductFactory(client=sm1)
    theirs = services.sign_up(
        client=sm1,
        customer=services.CustomerInput(email="tom@example.com"),
        lines=[services.Line(other)],
        payment=card(),
        confirm_auto_renewal=True,
        actor=STAFF,
    )
    assert documents.invoice_for(theirs.purchase).number == 1  # its own series
    assert CustomerEmail.objects.filter(kind="receipt").count() == 3


def test_a_rolled_back_number_is_given_again(shop):
    result = buy(shop)
    with pytest.raises(RuntimeError), transaction.atomic():
        documents.invoice_for(result.purchase)
        raise RuntimeError("the request failed after the invoice was written")
    assert not Document.objects.exists()
    assert documents.invoice_for(result.purchase).number == 1


def run_together(n, work):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(i):
        try:
            barrier.wait()
            results.append(work(i))
        except DomainError as exc:
            errors.append(exc.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refunds_of_a_purchase_one_succeeds(needs_postgres, shop):
    result = buy(shop)
    done, refused = run_together(
        2, lambda i: services.refund(purchase=result.purchase, actor=STAFF, key=f"k{i}")
    )
    assert len(done) == 1 and len(refused) == 1
    assert "only paid purchases can be refunded" in refused[0]
    purchase = Purchase.objects.get(pk=result.purchase.pk)
    assert purchase.refunded_amount == Decimal("72.50")
    assert GatewayCharge.objects.filter(message__startswith="Refund of").count() == 1
    assert Document.objects.filter(kind="credit_note").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_numbers_have_no_gaps_under_concurrency(needs_postgres, shop):
    bought = [buy(shop, email=f"c{i}@example.com").purchase for i in range(8)]
    issued, errors = run_together(
        16,
        lambda i: documents.invoice_for(bought[i % 8]).number,  # each asked for twice
    )
    assert not errors
    numbers = sorted(Document.objects.filter(kind="invoice").values_list("number", flat=True))
    assert numbers == list(range(1, 9))  # one per purchase, 1 to 8, no gap
    assert sorted(set(issued)) == numbers
