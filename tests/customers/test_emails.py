"""Customer e-mails are written with the change and sent after commit."""

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


def test_sending_renders_unrendered_emails_with_a_constant_number_of_queries(
    sm2, monthly, django_assert_max_num_queries
):
    """The renewal engine writes e-mails without a body; sending renders them
    (with the portal link) without a query per e-mail."""
    from customers.emails import send_pending

    for n in range(6):
        sign_up(sm2, monthly, email=f"q{n}@example.com")
    CustomerEmail.objects.update(sent_at=None, body_text="", body_html="")
    with django_assert_max_num_queries(6) as few:
        send_pending(limit=2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        send_pending(limit=4)
    assert all("/portal/enter/" in e.body_text for e in CustomerEmail.objects.all())
    assert len(mail.outbox) == 6
