"""Manual renewal is never charged by the schedule; its customers are invited
to renew, invoice customers get an invoice, and nobody is told a charge
failed that was never made (docs/lifecycle.md, docs/renewals.md)."""

from datetime import UTC, datetime, timedelta

import pytest

from commerce.gateway import CARD_DECLINES_AFTER_FIRST
from commerce.models import GatewayCharge, Purchase
from customers.emails import send_pending
from customers.models import CustomerEmail
from subscriptions import actions, renewals, services
from subscriptions.errors import TransitionNotAllowed
from tests.conftest import STAFF, fresh, sign_up, subscribe
from tests.factories import ProductFactory

FEB28 = datetime(2026, 2, 28, 12, tzinfo=UTC)
MAR31 = datetime(2026, 3, 31, 12, tzinfo=UTC)


def sweep(at):
    """What beat and the workers do, in this process."""
    for work in renewals.start_sweep(as_of=at):
        renewals.run_in_process(work)


def charges_of(sub):
    """Renewal charges the gateway saw for the subscription (every attempt)."""
    return GatewayCharge.objects.filter(idempotency_key__startswith=f"renewal:{sub.pk}:").count()


def emails_of(sub):
    """The e-mails the customer got about the subscription, rendered as sent."""
    send_pending()
    return list(CustomerEmail.objects.filter(subscription=sub).order_by("created_at", "id"))


def kinds(sub):
    return [e.kind for e in emails_of(sub)]


def paying_by_invoice(client, product, auto=True):
    """A subscription whose sign-up invoice is paid: Active, paying by invoice."""
    result = sign_up(client, product, invoice=True, auto=auto)
    services.mark_purchase_paid(
        purchase=result.purchase, actor=STAFF, at=result.purchase.created_at
    )
    return result.subscriptions[0]


def renewal_invoice(sub):
    return Purchase.objects.get(subscription=sub, category="renewal")


# --- Manual is never charged by the schedule ------------------------------------


def test_switched_to_manual_in_grace_the_retries_stop_and_switching_back_resumes_them(sm2, monthly):
    sub = subscribe(sm2, monthly, number=CARD_DECLINES_AFTER_FIRST)
    sweep(FEB28)
    assert (fresh(sub).status, charges_of(sub)) == ("Grace", 1)
    services.switch_renewal_type(subscription=sub, renewal_type="Manual", actor=STAFF, at=FEB28)
    for day in (1, 3, 5):  # the retry days of grace
        sweep(FEB28 + timedelta(days=day, minutes=1))
    assert (fresh(sub).status, charges_of(sub)) == ("Grace", 1)
    services.switch_renewal_type(
        subscription=sub, renewal_type="Automatic", actor=STAFF, at=FEB28 + timedelta(days=5)
    )
    sweep(FEB28 + timedelta(days=5, hours=1))
    assert charges_of(sub) == 2  # the retry schedule goes on
    sweep(FEB28 + timedelta(days=7, minutes=1))
    assert fresh(sub).status == "Hold"


def test_a_manual_subscription_in_grace_goes_to_hold_uncharged_with_a_renew_wording(sm2, monthly):
    sub = subscribe(sm2, monthly, auto=False)
    sweep(FEB28)
    sweep(FEB28 + timedelta(days=7, minutes=1))
    assert (fresh(sub).status, charges_of(sub)) == ("Hold", 0)
    on_hold = [e for e in emails_of(sub) if e.kind == "on_hold"]
    assert len(on_hold) == 1 and "Renew now to keep it" in on_hold[0].body_text


# --- invitations, not "payment failed" ---------------------------------------------


def test_a_manual_subscription_at_its_billing_date_is_invited_to_renew_not_told_a_charge_failed(
    sm2, monthly
):
    sub = subscribe(sm2, monthly, auto=False)
    sweep(FEB28)
    sub = fresh(sub)
    assert (sub.status, sub.renewal_type, charges_of(sub)) == ("Grace", "Manual", 0)
    assert kinds(sub) == ["receipt", "invitation"]
    invitation = emails_of(sub)[-1]
    assert invitation.subject == f"Your {sm2.name} subscription is up for renewal on 2026-02-28"
    body = invitation.body_text
    assert "up for renewal on 2026-02-28: 10.00 EUR" in body
    assert "renew now with your card on file or a new card" in body
    assert "[personal portal link, sent to the customer only]" in body  # the link goes as sent
    assert "could not charge" not in body and "payment details" not in body


def test_the_reminder_of_a_manual_subscription_is_an_invitation(sm2, monthly):
    sub = subscribe(sm2, monthly, auto=False)
    sweep(FEB28 - timedelta(days=7))
    assert kinds(sub) == ["receipt", "invitation"]
    assert "10.00 EUR" in emails_of(sub)[-1].body_text


def test_an_automatic_subscription_still_gets_the_charge_reminder(sm2, monthly):
    sub = subscribe(sm2, monthly)
    sweep(FEB28 - timedelta(days=7))
    reminder = emails_of(sub)[-1]
    assert reminder.kind == "reminder"
    assert "We will charge your saved payment method" in reminder.body_text


def test_sm1_awaiting_reinstate_gets_an_up_for_renewal_invitation_at_reminder_time(sm1):
    product = ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    sub = subscribe(sm1, product)
    assert fresh(sub).status == "Deactivated"
    sweep(FEB28 - timedelta(days=7))
    invitation = emails_of(sub)[-1]
    assert invitation.kind == "invitation"
    assert "renews only when you confirm" in invitation.body_text
    sweep(FEB28 - timedelta(days=6))  # once per interval
    assert kinds(sub).count("invitation") == 1
    assert charges_of(sub) == 0


def test_await_reinstate_invites_confirmation_instead_of_announcing_an_end(sm1):
    sub = subscribe(sm1, ProductFactory(client=sm1))
    services.await_reinstate(subscription=sub, actor=STAFF)
    last = emails_of(sub)[-1]
    assert last.kind == "invitation"
    assert "has ended" not in last.body_text and "renews only when you confirm" in last.body_text


def test_the_receipt_of_a_manual_product_says_it_awaits_confirmation(sm1):
    product = ProductFactory(client=sm1, renewal_mode="manual", is_one_time_rebilling=True)
    sub = subscribe(sm1, product)
    receipt = emails_of(sub)[0]
    assert receipt.kind == "receipt"
    assert "is active" not in receipt.body_text
    assert "renews only when you confirm it" in receipt.body_text


# --- invoice renewals ---------------------------------------------------------------


@pytest.mark.parametrize("auto", [True, False], ids=["automatic", "manual"])
def test_an_invoice_subscription_gets_its_renewal_invoice_at_the_billing_date(sm2, monthly, auto):
    result = sign_up(sm2, monthly, invoice=True, auto=auto)
    services.mark_purchase_paid(
        purchase=result.purchase, actor=STAFF, at=result.purchase.created_at
    )
    sub = result.subscriptions[0]
    sweep(FEB28)
    invoice = renewal_invoice(sub)
    assert (invoice.status, invoice.total, fresh(sub).status) == ("pending", monthly.price, "Grace")
    mails = emails_of(sub)
    assert [e.kind for e in mails if e.created_at == FEB28] == ["invoice"]
    assert mails[-1].purchase_id == invoice.pk
    assert f"please pay 10.00 EUR by bank transfer, quoting order {invoice.pk}" in (
        mails[-1].body_text
    )
    assert "payment_failed" not in kinds(sub)
    assert "mark-paid" in actions.offered(fresh(sub), list(sub.items.all()), invoice)


def test_a_renewal_invoice_paid_on_its_billing_date_keeps_the_schedule(sm2, monthly):
    result = sign_up(sm2, monthly, invoice=True, auto=False)
    services.mark_purchase_paid(
        purchase=result.purchase, actor=STAFF, at=result.purchase.created_at
    )
    sub = result.subscriptions[0]
    sweep(FEB28)
    services.mark_purchase_paid(purchase=renewal_invoice(sub), actor=STAFF, at=FEB28)
    sub = fresh(sub)
    assert (sub.status, sub.last_interval_no, sub.next_billing_date) == ("Active", 2, MAR31)


def test_a_renewal_invoice_paid_late_starts_the_new_interval_on_the_payment_date(sm2, monthly):
    result = sign_up(sm2, monthly, invoice=True)
    services.mark_purchase_paid(
        purchase=result.purchase, actor=STAFF, at=result.purchase.created_at
    )
    sub = result.subscriptions[0]
    sweep(FEB28)
    paid = FEB28 + timedelta(days=4)
    services.mark_purchase_paid(purchase=renewal_invoice(sub), actor=STAFF, at=paid)
    sub = fresh(sub)
    assert (sub.status, sub.last_interval_no) == ("Active", 2)
    assert sub.next_billing_date == datetime(2026, 4, 4, 12, tzinfo=UTC)


def test_an_unpaid_renewal_invoice_goes_on_hold_with_invoice_wording(sm2, monthly):
    result = sign_up(sm2, monthly, invoice=True)
    services.mark_purchase_paid(
        purchase=result.purchase, actor=STAFF, at=result.purchase.created_at
    )
    sub = result.subscriptions[0]
    sweep(FEB28)
    sweep(FEB28 + timedelta(days=7, minutes=1))
    assert fresh(sub).status == "Hold"
    on_hold = [e for e in emails_of(sub) if e.kind == "on_hold"]
    assert "Please pay the renewal invoice to keep it." in on_hold[0].body_text
    assert charges_of(sub) == 0


# --- Renew now, for every payment kind ------------------------------------------------


def test_renew_now_on_an_invoice_subscription_issues_its_renewal_invoice(sm2, monthly):
    sub = paying_by_invoice(sm2, monthly)
    assert "renew-now" in actions.offered(fresh(sub), list(sub.items.all()), None)
    message = actions.perform("renew-now", sub=sub, actor=STAFF, running_no=None, new_date=None)
    assert "Renew now: done" in message
    invoice = renewal_invoice(sub)
    assert (invoice.status, invoice.payment_method.kind, invoice.total) == (
        "pending",
        "invoice",
        monthly.price,
    )
    assert emails_of(sub)[-1].kind == "invoice" and charges_of(sub) == 0
    offered = actions.offered(fresh(sub), list(sub.items.all()), actions.pending_invoice(sub))
    assert "mark-paid" in offered and "renew-now" not in offered
    actions.perform("mark-paid", sub=sub, actor=STAFF, running_no=None, new_date=None)
    sub = fresh(sub)
    assert (sub.status, sub.last_interval_no, sub.next_billing_date) == ("Active", 2, MAR31)


def test_an_automatic_card_renewal_is_charged_not_invoiced(sm2, monthly):
    sub = subscribe(sm2, monthly)
    with pytest.raises(TransitionNotAllowed) as refused:
        services.issue_renewal_invoice(subscription=sub, actor=STAFF)
    assert "renews automatically by card" in str(refused.value)


def test_a_manual_customer_in_the_portal_renews_by_card_or_by_invoice(client, sm2, monthly, clock):
    from customers.portal import make_token

    sub = subscribe(sm2, monthly, auto=False)
    sweep(FEB28)
    clock.move_to(FEB28 + timedelta(hours=1), tick=False)  # the customer comes an hour later
    offered = [a for a, _, _ in actions.offered_to_customer(fresh(sub), list(sub.items.all()))]
    assert {"renew-now", "renew-invoice"} <= set(offered)
    client.get(f"/portal/enter/{make_token(sub.customer)}/")
    question = client.get(f"/portal/subscriptions/{sub.pk}/renew-invoice/").content.decode()
    assert "Renew by invoice?" in question and "10.00 EUR" in question
    done = client.post(f"/portal/subscriptions/{sub.pk}/renew-invoice/", follow=True)
    assert "The invoice for" in done.content.decode()
    invoice = renewal_invoice(sub)
    assert (invoice.status, invoice.payment_method.kind) == ("pending", "invoice")
    assert charges_of(sub) == 0 and emails_of(sub)[-1].kind == "invoice"
    paid = FEB28 + timedelta(days=2)
    services.mark_purchase_paid(purchase=invoice, actor=STAFF, at=paid)
    sub = fresh(sub)
    assert (sub.status, sub.renewal_type) == ("Active", "Manual")
    assert sub.next_billing_date == datetime(2026, 4, 2, 12, tzinfo=UTC)  # paid late
