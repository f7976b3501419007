"""Item changes: add an item, change its product, quantity or price, with
alignment to the current interval and a price preview (docs/api.md).

Alignment, as the API's ``AlignmentSettings`` says it:
- preview only: nothing changes; the answer carries the prices;
- align, no extend: the change applies now and the prorated difference up to
  the next billing date is charged now, as its own purchase (category
  Alignment). Day-exact: difference x remaining days / days in the current
  interval, rounded half-up to the currency's minor unit. A negative amount
  (a credit) is refused and nothing changes;
- align and extend: the change applies now, the current interval is extended
  by one full interval (the next billing date moves one interval later) and
  that full interval, at the new prices of every Active item, is charged now;
- no align: the change is written now and bills from the next billing date;
  nothing is charged now (**Decision**: the item shows its new product,
  quantity and price at once; what the customer pays changes at the next
  renewal).

A charge follows the same three steps as a renewal (see ``billing``): the
pending purchase is committed, the gateway is called outside any transaction
with the key ``alignment:<purchase id>``, and the answer is recorded together
with the change. A decline records the declined purchase and changes nothing
else. If the subscription changed between the steps, the approved charge is
refunded and nothing else changes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from commerce.gateway import Outcome, get_gateway
from commerce.models import Product, Purchase, PurchaseItem
from commerce.money import quantize, split_vat

from ..dates import Interval
from ..errors import ConcurrentChange, InvalidInput, TransitionNotAllowed
from ..models import EventCode, ItemStatus, Subscription, SubscriptionItem, SubscriptionStatus
from ..notifications.payloads import purchase_payload
from ..notifications.types import NotificationType
from .common import Actor, Locked, lock, now_or, record, refuse_if_not_ours

S, IS = SubscriptionStatus, ItemStatus

# What a change is (the API endpoint it comes from) and its history codes.


class ChangeKind(enum.StrEnum):
    """What an item change does (the API endpoint it comes from)."""

    ADD = "add"  # addsubscriptionitem
    UPDATE = "update"  # updatesubscriptionitem
    INCREASE_QUANTITY = "incqty"  # increasesubscriptionitemquantity
    PRICE = "price"  # updatesubscriptionitemprice


ADD, UPDATE, INCREASE_QUANTITY, PRICE = ChangeKind
E = EventCode
# The API's UpdateAction, as recorded in history.
UPDATE_ACTIONS = {"Update": E.UPDATE, "Upgrade": E.UPGRADE, "Downgrade": E.DOWNGRADE}
MAX_PRICE = Decimal("9999999999.99")  # the item's unit price column: 12 digits, 2 places


class ChargeDeclined(TransitionNotAllowed):
    """The immediate charge was declined (or failed); nothing was changed."""

    def __init__(self, reason: str, *, purchase: Purchase) -> None:
        super().__init__(reason)
        self.purchase = purchase


@dataclass(frozen=True)
class CustomerPrice:
    """A unit price as the API gives it: ``is_gross`` says whether ``value``
    includes the client's VAT."""

    currency: str
    value: Decimal
    is_gross: bool = True


@dataclass(frozen=True)
class Alignment:
    preview_only: bool = False
    align: bool = False
    extend: bool = False

    def __post_init__(self) -> None:
        if self.extend and not self.align:
            raise InvalidInput(
                "ExtendInterval needs AlignToCurrentInterval.",
                fields={"AlignmentSettings.ExtendInterval": "Needs AlignToCurrentInterval."},
            )

    @property
    def label(self) -> str:
        if self.extend:
            return "interval extended by one full interval, charged now"
        if self.align:
            return "prorated difference charged now"
        return "from the next billing date"


@dataclass(frozen=True)
class ItemChange:
    """One requested change. ``quantity`` is the item's total after the
    change; ``add_quantity`` is what ``incqty`` adds."""

    kind: ChangeKind
    running_no: int | None = None
    product: Product | None = None
    quantity: int | None = None
    add_quantity: int | None = None
    price: CustomerPrice | None = None
    update_action: str = "Update"


@dataclass
class Quote:
    """What a change costs: gross amounts in the subscription's currency."""

    currency: str
    vat_rate: Decimal
    charge_now: Decimal
    next_billing_item: Decimal
    next_billing_total: Decimal
    next_billing_date: datetime
    remaining_days: int
    interval_days: int
    # The item after the change.
    running_no: int
    product: Product
    quantity: int
    unit_price: Decimal
    event_code: EventCode
    summary: str
    # Filled in when the change was made.
    applied: bool = False
    purchase: Purchase | None = None

    def split(self, gross: Decimal) -> tuple[Decimal, Decimal, Decimal]:
        return split_vat(gross, self.currency, self.vat_rate)

    @property
    def charge_split(self) -> tuple[Decimal, Decimal, Decimal]:
        return self.split(self.charge_now)

    @property
    def next_billing_split(self) -> tuple[Decimal, Decimal, Decimal]:
        return self.split(self.next_billing_item)


def change_item(
    *,
    subscription: Subscription,
    change: ItemChange,
    alignment: Alignment,
    actor: Actor,
    generate_mail: bool = True,
    at: datetime | None = None,
) -> Quote:
    """Preview or make one item change (see the module doc)."""
    at = now_or(at, subscription)
    with transaction.atomic():
        locked = lock(subscription)
        quote = _quote(locked, change, alignment, at=at)
        if alignment.preview_only:
            return quote
        if quote.charge_now == 0:
            _apply(locked, quote, alignment, actor=actor, at=at, generate_mail=generate_mail)
            return quote
        if not locked.sub.payment_method.is_online:
            raise TransitionNotAllowed(
                f"{quote.charge_now} {quote.currency} would be charged now, but "
                f"{locked.sub.display_id} is paid by invoice. Apply the change from the "
                "next billing date instead."
            )
        purchase = _open_purchase(locked, quote, alignment, at=at)
        row_version = locked.sub.row_version
        payment_method = locked.sub.payment_method
    result = get_gateway().charge(
        purchase.total, purchase.currency, payment_method, f"alignment:{purchase.pk}"
    )
    with transaction.atomic():
        purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
        purchase.charge_attempts += 1
        if not result.approved:
            declined = result.outcome == Outcome.DECLINED
            purchase.status = Purchase.Status.DECLINED if declined else Purchase.Status.FAILED
            purchase.decline_reason = result.message
            purchase.save()
        else:
            purchase.status, purchase.paid_at = Purchase.Status.PAID, at
            purchase.gateway_reference = result.reference
            locked = lock(subscription)
            if locked.sub.row_version != row_version:
                # Someone changed the subscription while the card was charged:
                # what was charged may no longer be right, so give it back.
                purchase.status = Purchase.Status.REFUNDED
                purchase.refunded_amount = purchase.total
                purchase.decline_reason = "Refunded: the subscription changed during the charge."
                purchase.save()
            else:
                purchase.save()
                quote = _quote(locked, change, alignment, at=at)
                quote.purchase = purchase
                _apply(locked, quote, alignment, actor=actor, at=at, generate_mail=generate_mail)
                return quote
    if purchase.status == Purchase.Status.REFUNDED:
        raise ConcurrentChange(
            f"{locked.sub.display_id} was changed by someone else during the charge; the "
            f"charge (purchase {purchase.pk}) was refunded and nothing was changed."
        )
    raise ChargeDeclined(
        f"The charge of {purchase.total} {purchase.currency} was "
        f"{'declined' if purchase.status == Purchase.Status.DECLINED else 'not completed'}"
        f"{' (' + result.message.rstrip('.') + ')' if result.message else ''}; nothing was changed "
        f"(purchase {purchase.pk}).",
        purchase=purchase,
    )


def quantity_change(item: SubscriptionItem, quantity: int) -> ItemChange:
    """An item's new total quantity: more of it is ``incqty``, less a downgrade."""
    more = quantity - item.quantity
    if more > 0:
        return ItemChange(kind=INCREASE_QUANTITY, running_no=item.running_no, add_quantity=more)
    return ItemChange(
        kind=UPDATE, running_no=item.running_no, quantity=quantity, update_action="Downgrade"
    )


def product_change(item: SubscriptionItem, product: Product) -> ItemChange:
    """Another product for an item: pricier is an upgrade, cheaper a downgrade."""
    action = "Update"
    if product.price != item.unit_price:
        action = "Upgrade" if product.price > item.unit_price else "Downgrade"
    return ItemChange(
        kind=UPDATE, running_no=item.running_no, product=product, update_action=action
    )


# --- pricing -----------------------------------------------------------------------


def gross_price(price: CustomerPrice, *, currency: str, vat_rate: Decimal) -> Decimal:
    """The gross unit price of a ``CustomerPrice`` (stored prices are gross)."""
    if price.currency.upper() != currency:
        raise TransitionNotAllowed(
            f"The price is in {price.currency.upper()}, the subscription in {currency}.",
            fields={"CustomerPrice.CurrencyId": f"Must be {currency}."},
        )
    if price.value < 0:
        raise InvalidInput(
            "A price cannot be negative.", fields={"CustomerPrice.Value": "Must be 0 or more."}
        )
    value = price.value if price.is_gross else price.value * (1 + vat_rate / 100)
    gross = quantize(value, currency)
    if gross > MAX_PRICE:
        raise InvalidInput(
            "The price is too large.", fields={"CustomerPrice.Value": f"At most {MAX_PRICE}."}
        )
    return gross


def interval_days(sub: Subscription, at: datetime) -> tuple[int, int]:
    """(remaining days, days in the current interval), counted in whole UTC days."""
    end = sub.next_billing_date
    start = sub.billing_date_of(sub.last_interval_no) if sub.last_interval_no else sub.start_date
    days = max((end.date() - start.date()).days, 1)
    remaining = min(max((end.date() - at.date()).days, 0), days)
    return remaining, days


def prorate(difference: Decimal, remaining: int, days: int, currency: str) -> Decimal:
    return quantize(difference * remaining / days, currency)


def _check_product(product: Product, sub: Subscription) -> None:
    if product.client_id != sub.client_id or not product.is_subscription:
        raise InvalidInput(
            f"Product {product.pk} is not a subscription product of this client.",
            fields={"ProductId": "Not a subscription product of this client."},
        )
    if (product.interval_months, product.interval_days) != (sub.interval_months, sub.interval_days):
        every = Interval(product.interval_months, product.interval_days)
        raise TransitionNotAllowed(
            f"{product.name} renews every {every}; {sub.display_id} every {sub.interval}.",
            fields={"ProductId": "Must have the subscription's interval length."},
        )
    if product.currency != sub.currency:
        raise TransitionNotAllowed(
            f"{product.name} is priced in {product.currency}; {sub.display_id} in {sub.currency}.",
            fields={"ProductId": "Must have the subscription's currency."},
        )


def _quote(locked: Locked, change: ItemChange, alignment: Alignment, *, at: datetime) -> Quote:
    """Validate the change against the locked state and price it (no writes)."""
    sub = locked.sub
    refuse_if_not_ours(sub)
    if sub.status != S.ACTIVE:
        raise TransitionNotAllowed(
            f"Items can be changed only while the subscription is Active "
            f"({sub.display_id} is {sub.get_status_display()})."
        )
    currency, vat = sub.currency, sub.client.vat_rate
    custom = gross_price(change.price, currency=currency, vat_rate=vat) if change.price else None
    if change.kind == ADD:
        if change.product is None:
            raise InvalidInput("Choose a product.", fields={"ProductId": "Required."})
        product = change.product
        _check_product(product, sub)
        running_no = max((i.running_no for i in locked.items), default=0) + 1
        old_qty, old_unit = 0, Decimal("0")
        quantity = change.quantity or 1
        unit = custom if custom is not None else product.price
        event, what = E.ADD, f"Added item {running_no} ({product.name} x {quantity} @ {unit})"
    else:
        item = locked.item(change.running_no or 0)
        if item.status != IS.ACTIVE:
            raise TransitionNotAllowed(
                f"Item {item.running_no} is {item.get_status_display()}; only Active items "
                "can be changed."
            )
        running_no, old_qty, old_unit = item.running_no, item.quantity, item.unit_price
        product = change.product or item.product
        if product.pk != item.product_id:
            _check_product(product, sub)
        if change.kind == INCREASE_QUANTITY:
            quantity = item.quantity + (change.add_quantity or 0)
        else:
            quantity = change.quantity or item.quantity
        if custom is not None:
            unit = custom
        elif product.pk != item.product_id:
            unit = product.price
        else:
            unit = item.unit_price
        if (product.pk, quantity, unit) == (item.product_id, item.quantity, item.unit_price):
            raise InvalidInput(
                f"Item {running_no} already is {product.name} x {quantity} @ {unit} {currency}; "
                "nothing to change.",
                fields={"Body": "Nothing to change."},
            )
        event = {
            UPDATE: UPDATE_ACTIONS.get(change.update_action, E.UPDATE),
            INCREASE_QUANTITY: E.INCREASE_QUANTITY,
            PRICE: E.UPDATE,
        }[change.kind]
        what = (
            f"Item {running_no}: {item.product.name} x {old_qty} @ {old_unit} -> "
            f"{product.name} x {quantity} @ {unit}"
        )
    new_line, old_line = unit * quantity, old_unit * old_qty
    others = sub.billing_amount([i for i in locked.items if i.running_no != running_no])
    remaining, days = interval_days(sub, at)
    if alignment.extend:
        charge = others + new_line
    elif alignment.align:
        charge = prorate(new_line - old_line, remaining, days, currency)
        if charge < 0:
            raise InvalidInput(
                f"Aligned to the current interval this change is a credit of {-charge} "
                f"{currency}, which cannot be paid out. Apply it from the next billing date.",
                fields={"AlignmentSettings.AlignToCurrentInterval": "Gives a negative amount."},
            )
    else:
        charge = Decimal("0")
    return Quote(
        currency=currency,
        vat_rate=vat,
        charge_now=quantize(charge, currency),
        next_billing_item=quantize(new_line, currency),
        next_billing_total=quantize(others + new_line, currency),
        next_billing_date=sub.next_billing_date,
        remaining_days=remaining,
        interval_days=days,
        running_no=running_no,
        product=product,
        quantity=quantity,
        unit_price=unit,
        event_code=event,
        summary=f"{what} {currency}; {alignment.label}",
    )


# --- writing -----------------------------------------------------------------------


def _open_purchase(locked: Locked, quote: Quote, alignment: Alignment, *, at: datetime) -> Purchase:
    """The pending Alignment purchase: one line for the changed item, or with
    an extension one line per Active item for the whole extra interval."""
    sub = locked.sub
    interval_no = sub.last_interval_no + 1 if alignment.extend else sub.last_interval_no
    purchase = Purchase.objects.create(
        client_id=sub.client_id,
        customer_id=sub.customer_id,
        subscription=sub,
        category=Purchase.Category.ALIGNMENT,
        status=Purchase.Status.PENDING,
        interval_no=interval_no,
        currency=sub.currency,
        total=quote.charge_now,
        payment_method_id=sub.payment_method_id,
        created_at=at,
    )
    changed = (quote.running_no, quote.product, quote.quantity, quote.unit_price)
    if alignment.extend:
        rows = [
            (i.running_no, i.product, i.quantity, i.unit_price)
            for i in locked.items_in(IS.ACTIVE)
            if i.running_no != quote.running_no
        ]
        rows = sorted([*rows, changed], key=lambda r: r[0])
        lines = [(*r, r[2] * r[3]) for r in rows]
    else:
        lines = [(*changed, quote.charge_now)]
    by_no = {i.running_no: i for i in locked.items}
    PurchaseItem.objects.bulk_create(
        PurchaseItem(
            purchase=purchase,
            running_no=line_no,
            product=product,
            quantity=quantity,
            unit_price=unit,
            amount=amount,
            subscription_item=by_no.get(item_no),  # a new item is linked when created
            interval_no=interval_no,
        )
        for line_no, (item_no, product, quantity, unit, amount) in enumerate(lines, start=1)
    )
    return purchase


def _apply(
    locked: Locked,
    quote: Quote,
    alignment: Alignment,
    *,
    actor: Actor,
    at: datetime,
    generate_mail: bool,
) -> None:
    sub = locked.sub
    existing = {i.running_no: i for i in locked.items}
    if quote.running_no in existing:
        item = existing[quote.running_no]
        item.product = quote.product
        item.quantity, item.unit_price = quote.quantity, quote.unit_price
        item.version += 1
    else:
        item = SubscriptionItem.objects.create(
            subscription=sub,
            running_no=quote.running_no,
            product=quote.product,
            status=IS.ACTIVE,
            quantity=quote.quantity,
            unit_price=quote.unit_price,
            recurrence_count=quote.product.recurrence_count,
            last_interval_no=sub.last_interval_no,
            start_date=at,
        )
        locked.items.append(item)
    purchase = quote.purchase
    if purchase is not None:
        purchase.items.filter(subscription_item__isnull=True).update(subscription_item=item)
    summary = quote.summary
    if alignment.extend:
        sub.last_interval_no += 1
        for active in locked.items_in(IS.ACTIVE):
            active.last_interval_no += 1
        sub.next_billing_date = sub.billing_date_of(sub.last_interval_no + 1)
        summary += f"; next billing date {sub.next_billing_date:%Y-%m-%d}"
    if purchase is not None:
        summary += f" ({quote.charge_now} {quote.currency}, purchase {purchase.pk})"
    record(
        locked,
        actor=actor,
        event_code=quote.event_code,
        at=at,
        notification=NotificationType.PAID_ORDER if purchase is not None else None,
        payload=purchase_payload(purchase, [(sub, locked.items)], quote.event_code)
        if purchase is not None
        else None,
        purchase=purchase,
        generate_mail=generate_mail,
        summary=summary + ".",
    )
    quote.applied = True
    quote.next_billing_date = sub.next_billing_date
