"""Sign-up from a checkout-like input, and Mark as paid for offline payments."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from commerce.gateway import ChargeResult, Outcome, get_gateway
from commerce.models import Client, Product, Purchase, PurchaseItem, SMVersion
from customers.models import Customer, PaymentMethod

from ..errors import InvalidInput
from ..models import (
    EventCode,
    ItemStatus,
    RenewalType,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
)
from ..notifications import outbox
from ..notifications.payloads import purchase_payload
from ..notifications.types import NotificationType
from .common import Actor, Locked, TransactionStatus, now_or, record

E, N = EventCode, NotificationType

TRANSIENT_RETRIES = (0.1, 0.3)  # seconds between sign-up attempts on a gateway error


@dataclass(frozen=True)
class CustomerInput:
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    reference_id: str = ""


@dataclass(frozen=True)
class CardInput:
    number: str
    expiry_month: int
    expiry_year: int


@dataclass(frozen=True)
class InvoiceInput:
    pass


@dataclass(frozen=True)
class Line:
    product: Product
    quantity: int = 1


@dataclass
class SignUpResult:
    purchase: Purchase
    subscriptions: list[Subscription] = field(default_factory=list)
    transaction_status: TransactionStatus = TransactionStatus.SUCCESS
    message: str = ""


def order_total(lines: list[Line]) -> Decimal:
    """What a sign-up charges: each product's (gross) price x quantity."""
    return sum((line.product.price * line.quantity for line in lines), Decimal("0"))


def sign_up(
    *,
    client: Client,
    customer: CustomerInput,
    lines: list[Line],
    payment: CardInput | InvoiceInput,
    confirm_auto_renewal: bool = True,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
    update_customer: bool = True,
) -> SignUpResult:
    """Create a purchase and its subscriptions (one per interval length).
    ``update_customer=False`` (checkout, portal): an existing customer's
    details are never changed by the purchase.

    A card is charged first; only an approved charge creates subscriptions.
    A declined card leaves a declined purchase and nothing else (docs/lifecycle.md).
    Invoice sign-ups create ``New`` subscriptions that wait for Mark as paid.
    """
    at = now_or(at, client)
    currency = _validate(client, customer, lines, payment, at)
    total = order_total(lines)
    with transaction.atomic():
        cust = _upsert_customer(client, customer, update=update_customer, at=at)
        method = payment_method(cust, payment)
    result = None  # an invoice is not charged now
    if isinstance(payment, CardInput):
        result = _charge_with_retries(total, currency, method, f"signup:{uuid.uuid4()}")
        if not result.approved:
            return _record_decline(
                client, cust, method, lines, currency, total, result, at, generate_mail
            )
    return _create(
        client,
        cust,
        method,
        lines,
        currency,
        total,
        confirm_auto_renewal,
        actor=actor,
        at=at,
        result=result,
        generate_mail=generate_mail,
    )


def _validate(
    client: Client,
    customer: CustomerInput,
    lines: list[Line],
    payment: CardInput | InvoiceInput,
    at: datetime,
) -> str:
    errors: dict[str, str] = {}
    try:
        validate_email(customer.email)
    except ValidationError:
        errors["Email"] = "Enter a valid e-mail address."
    if not lines:
        errors["Items"] = "Choose at least one product."
    for line in lines:
        if line.product.client_id != client.pk or not line.product.is_active:
            errors["ProductId"] = f"Product {line.product.pk} is not sold by this client."
        if not 1 <= line.quantity <= 10_000:
            errors["Quantity"] = "Quantity must be between 1 and 10000."
    currencies = {line.product.currency for line in lines}
    if len(currencies) > 1:
        errors["Items"] = "All products of one purchase must have the same currency."
    if isinstance(payment, CardInput):
        errors.update(card_errors(payment, at))
    if errors:
        raise InvalidInput(
            "The purchase could not be created: " + " ".join(errors.values()), fields=errors
        )
    return currencies.pop()


def card_errors(card: CardInput, at: datetime) -> dict[str, str]:
    """What is wrong with a card as entered (checkout, API and portal alike)."""
    errors: dict[str, str] = {}
    number = card.number.replace(" ", "")
    if not (number.isdigit() and 12 <= len(number) <= 19):
        errors["CardNumber"] = "Enter the card number as 12 to 19 digits."
    if not 1 <= card.expiry_month <= 12:
        errors["ExpiryMonth"] = "Expiry month must be 1 to 12."
    elif (card.expiry_year, card.expiry_month) < (at.year, at.month):
        errors["ExpiryYear"] = "The card has expired."
    return errors


def _upsert_customer(
    client: Client, data: CustomerInput, *, update: bool = True, at: datetime
) -> Customer:
    """A new customer is a customer since ``at``, the sign-up's time."""
    email = data.email.strip().lower()
    cust, created = Customer.objects.get_or_create(
        client=client, email=email, defaults={"created_at": at}
    )
    if not (created or update):
        return cust
    for attr in ("first_name", "last_name", "company", "reference_id"):
        value = getattr(data, attr)
        if value:
            setattr(cust, attr, value)
    cust.save()
    return cust


def payment_method(cust: Customer, payment: CardInput | InvoiceInput) -> PaymentMethod:
    if isinstance(payment, InvoiceInput):
        return PaymentMethod.objects.create(customer=cust, kind=PaymentMethod.Kind.INVOICE)
    card = get_gateway().tokenize(payment.number, payment.expiry_month, payment.expiry_year)
    return PaymentMethod.objects.create(
        customer=cust,
        kind=PaymentMethod.Kind.CARD,
        token=card.token,
        brand=card.brand,
        last4=card.last4,
        expiry_month=payment.expiry_month,
        expiry_year=payment.expiry_year,
    )


def _charge_with_retries(
    total: Decimal, currency: str, method: PaymentMethod, key: str
) -> ChargeResult:
    """A transient gateway error is retried with the same key; not a decline."""
    gateway = get_gateway()
    result = gateway.charge(total, currency, method, key)
    for pause in TRANSIENT_RETRIES:
        if result.outcome != Outcome.ERROR:
            break
        time.sleep(pause)
        result = gateway.charge(total, currency, method, key)
    return result


def _record_decline(
    client: Client,
    cust: Customer,
    method: PaymentMethod,
    lines: list[Line],
    currency: str,
    total: Decimal,
    result: ChargeResult,
    at: datetime,
    generate_mail: bool,
) -> SignUpResult:
    declined = result.outcome == Outcome.DECLINED
    with transaction.atomic():
        purchase = _purchase(
            client,
            cust,
            method,
            lines,
            currency,
            total,
            at,
            Purchase.Status.DECLINED if declined else Purchase.Status.FAILED,
        )
        purchase.decline_reason = result.message
        purchase.charge_attempts = 1
        purchase.save(update_fields=["decline_reason", "charge_attempts"])
        outbox.notify_purchase(
            purchase,
            N.PAYMENT_DECLINED,
            purchase_payload(purchase, [], E.NEW),
            generate_mail=generate_mail,
        )
    status = TransactionStatus.REJECTED if declined else TransactionStatus.ERROR
    return SignUpResult(purchase, [], status, result.message)


def _purchase(
    client: Client,
    cust: Customer,
    method: PaymentMethod,
    lines: list[Line],
    currency: str,
    total: Decimal,
    at: datetime,
    status: str,
) -> Purchase:
    purchase = Purchase.objects.create(
        client=client,
        customer=cust,
        category=Purchase.Category.SIGNUP,
        status=status,
        currency=currency,
        total=total,
        payment_method=method,
        created_at=at,
    )
    PurchaseItem.objects.bulk_create(
        PurchaseItem(
            purchase=purchase,
            running_no=no,
            product=line.product,
            quantity=line.quantity,
            unit_price=line.product.price,
            amount=line.product.price * line.quantity,
        )
        for no, line in enumerate(lines, start=1)
    )
    return purchase


def _create(
    client: Client,
    cust: Customer,
    method: PaymentMethod,
    lines: list[Line],
    currency: str,
    total: Decimal,
    confirm_auto_renewal: bool,
    *,
    actor: Actor,
    at: datetime,
    result: ChargeResult | None,
    generate_mail: bool,
) -> SignUpResult:
    paid = result is not None
    with transaction.atomic():
        purchase = _purchase(
            client,
            cust,
            method,
            lines,
            currency,
            total,
            at,
            Purchase.Status.PAID if paid else Purchase.Status.PENDING,
        )
        if result is not None:
            purchase.gateway_reference = result.reference
            purchase.paid_at = at
            purchase.charge_attempts = 1
            purchase.save(update_fields=["gateway_reference", "paid_at", "charge_attempts"])
        groups: dict[tuple[int, int, int, int], list[PurchaseItem]] = defaultdict(list)
        for pi in purchase.items.select_related("product"):
            if pi.product.is_subscription:
                groups[pi.product.interval_key].append(pi)
        subs = [
            _subscription(
                client, cust, method, purchase, pis, confirm_auto_renewal, at, paid, actor
            )
            for pis in groups.values()
        ]
        payload = purchase_payload(purchase, subs, E.NEW)
        outbox.notify_purchase(
            purchase,
            N.PAID_ORDER if paid else N.NEW_OFFLINE_PAYMENT,
            payload,
            generate_mail=generate_mail,
        )
    status = TransactionStatus.SUCCESS if paid else TransactionStatus.PENDING
    return SignUpResult(purchase, [s for s, _ in subs], status)


def _subscription(
    client: Client,
    cust: Customer,
    method: PaymentMethod,
    purchase: Purchase,
    pis: list[PurchaseItem],
    confirm_auto_renewal: bool,
    at: datetime,
    paid: bool,
    actor: Actor,
) -> tuple[Subscription, list[SubscriptionItem]]:
    first = pis[0].product
    sub = Subscription.objects.create(
        client=client,
        customer=cust,
        payment_method=method,
        status=SubscriptionStatus.NEW,
        sm_version=client.sm_version,
        renewal_type=(
            (RenewalType.AUTOMATIC if confirm_auto_renewal else RenewalType.MANUAL)
            if client.is_sm2
            else None
        ),
        currency=purchase.currency,
        start_interval_months=first.initial_interval_months,
        start_interval_days=first.initial_interval_days,
        interval_months=first.interval_months,
        interval_days=first.interval_days,
        start_date=at,
        anchor_date=at,
        anchor_interval_no=1,
        next_billing_date=at,
        last_interval_no=0,
        status_changed_at=at,
    )
    sub.next_billing_date = sub.billing_date_of(2)
    sub.save(update_fields=["next_billing_date"])
    items = []
    for no, pi in enumerate(pis, start=1):
        items.append(
            SubscriptionItem.objects.create(
                subscription=sub,
                running_no=no,
                product=pi.product,
                status=ItemStatus.ACTIVE,
                quantity=pi.quantity,
                unit_price=pi.unit_price,
                recurrence_count=pi.product.recurrence_count,
                start_date=at,
            )
        )
        pi.subscription_item = items[-1]
        pi.interval_no = 1
    PurchaseItem.objects.bulk_update(pis, ["subscription_item", "interval_no"])
    purchase.subscription = purchase.subscription or sub
    purchase.save(update_fields=["subscription"])
    locked = Locked(sub, items, {})
    if paid:
        start_paid_interval(locked, at=at)
    record(locked, actor=actor, event_code=E.NEW, at=at, summary=_signup_summary(locked, paid))
    return sub, items


def start_paid_interval(locked: Locked, *, at: datetime) -> None:
    """Interval 1 is paid: set the sign-up statuses (docs/lifecycle.md).

    SM 1.0 manual products start ``AwaitingReinstate`` (and the subscription
    ``Deactivated`` when no automatic item is left); everything else
    ``Active``."""
    sub = locked.sub
    sub.last_interval_no = 1
    sub.rebase(at, interval_no=1)
    for item in locked.items:
        item.last_interval_no = 1
        if (
            sub.sm_version == SMVersion.V1
            and item.product.renewal_mode == Product.RenewalMode.MANUAL
        ):
            item.set_status(ItemStatus.AWAITING_REINSTATE, at=at)
    has_active = bool(locked.items_in(ItemStatus.ACTIVE))
    sub.set_status(
        SubscriptionStatus.ACTIVE if has_active else SubscriptionStatus.DEACTIVATED, at=at
    )


def _signup_summary(locked: Locked, paid: bool) -> str:
    sub = locked.sub
    how = "paid online" if paid else "awaiting offline payment"
    kind = f", {sub.renewal_type} renewal" if sub.renewal_type else ""
    return (
        f"Signed up ({how}{kind}): {len(locked.items)} item(s); "
        f"status {sub.status}, next billing date {sub.next_billing_date:%Y-%m-%d}."
    )
