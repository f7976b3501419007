"""Customer e-mails are written with the change and sent after commit."""

import pytest
from django.core import mail

from customers.models import CustomerEmail
from subscriptions import services
from tests.conftest import STAFF, sign_up


def test_signup_queues_a_receipt_with_text_and_html_and_sends_it_after_commit(
    sm2, monthly, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = sign_up(sm2, monthly, email="rae@example.com")
    email = CustomerEmail.objects.get()
    assert (email.kind, email.to, email.purchase_id) == (
        "receipt",
        "rae@example.com",
        result.purchase.pk,
    )
    assert "10.00 EUR" in email.body_text and "<p>" in email.body_html
    assert email.sent_at is not None
    assert mail.outbox[0].subject == f"Your receipt from {sm2.name}"
    assert mail.outbox[0].alternatives[0][1] == "text/html"


def test_nothing_is_sent_before_commit(sm2, monthly, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sign_up(sm2, monthly)
    assert mail.outbox == [] and len(callbacks) == 2  # e-mail sending, webhook delivery
    assert CustomerEmail.objects.get().sent_at is None


def test_generate_mail_false_sends_no_email(sm2, monthly):
    sub = sign_up(sm2, monthly).subscriptions[0]
    services.switch_renewal_type(
        subscription=sub, renewal_type="Manual", actor=STAFF, generate_mail=False
    )
    assert list(CustomerEmail.objects.values_list("kind", flat=True)) == ["receipt"]


def test_emails_tab_lists_the_purchases_emails(login, sm2, monthly):
    result = sign_up(sm2, monthly, email="tab@example.com")
    services.switch_renewal_type(
        subscription=result.subscriptions[0], renewal_type="Manual", actor=STAFF
    )
    html = login(sm2, "viewer").get(f"/purchases/{result.purchase.pk}/emails/").content.decode()
    assert "Receipt" in html and "Subscription changed" in html and "tab@example.com" in html


def test_sending_renders_unrendered_emails_with_two_queries_per_email(
    sm2, monthly, django_assert_max_num_queries
):
    """The renewal engine writes e-mails without a body; sending renders them
    (with the portal link) with no query of their own: per e-mail one to read
    it (with what it is about), one to claim it and one to mark it sent, in a
    transaction of its own (here two savepoints inside the test's
    transaction). (Receipts carry their invoice: see the next test.)"""
    from customers.emails import send_pending

    for n in range(6):
        sign_up(sm2, monthly, email=f"q{n}@example.com")
    CustomerEmail.objects.update(sent_at=None, body_text="", body_html="", kind="changed")
    per_email = 3 + 2
    with django_assert_max_num_queries(1 + per_email * 2):
        send_pending(limit=2)
    with django_assert_max_num_queries(1 + per_email * 4):
        send_pending(limit=4)
    assert not any("/portal/enter/" in e.body_text for e in CustomerEmail.objects.all())
    assert len(mail.outbox) == 6
    assert all("/portal/enter/" in m.body for m in mail.outbox)  # put in as they are sent


def test_receipts_carry_their_invoice_at_a_constant_cost(
    sm2, monthly, django_assert_max_num_queries
):
    """A receipt issues its purchase's invoice (numbered, once) and attaches
    the PDF: a fixed number of queries per e-mail, whatever else there is."""
    from customers.emails import send_pending

    for n in range(6):
        sign_up(sm2, monthly, email=f"r{n}@example.com")
    with django_assert_max_num_queries(1 + 19 * 2):
        send_pending(limit=2)
    with django_assert_max_num_queries(1 + 19 * 4):
        send_pending(limit=4)
    names = sorted(m.attachments[0][0] for m in mail.outbox)
    assert names == [f"INV-00000{n}.pdf" for n in range(1, 7)]


def test_a_crash_while_sending_resends_at_most_the_message_in_flight(sm2, monthly, monkeypatch):
    """Each e-mail is marked sent as soon as it is sent; a worker that dies
    after handing one to the mail server but before marking it leaves only
    that one to send again — with the same Message-ID."""
    from django.core.mail.backends.locmem import EmailBackend

    from customers.emails import send_pending

    for n in range(5):
        sign_up(sm2, monthly, email=f"c{n}@example.com")
    CustomerEmail.objects.update(sent_at=None)
    real = EmailBackend.send_messages

    def dies_after_the_third(self, messages):
        sent = real(self, messages)
        if len(mail.outbox) == 3:
            raise SystemExit("worker killed")
        return sent

    monkeypatch.setattr(EmailBackend, "send_messages", dies_after_the_third)
    with pytest.raises(SystemExit):
        send_pending()
    monkeypatch.undo()
    assert CustomerEmail.objects.filter(sent_at__isnull=False).count() == 2
    send_pending()
    recipients = [m.to[0] for m in mail.outbox]
    assert len(recipients) == 6 and len(set(recipients)) == 5  # one message twice
    twice = [m for m in mail.outbox if recipients.count(m.to[0]) == 2]
    assert twice[0].extra_headers["Message-ID"] == twice[1].extra_headers["Message-ID"]
    assert CustomerEmail.objects.filter(sent_at__isnull=True).count() == 0
