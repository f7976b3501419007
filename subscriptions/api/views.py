"""The Subscription API endpoints (docs/api.md). Each validates its input,
finds the subscription within the caller's client (another client's is a
404), calls one lifecycle service, and answers with the Subscription object."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from commerce import documents
from commerce.filters import parse_id
from commerce.gateway import PaymentKind
from commerce.models import ApiCredential, Client, Document, Product, Purchase, RefundReason
from customers.models import Customer

from .. import services
from ..errors import InvalidInput, NotFound
from ..models import RenewalType, Subscription
from ..refund_views import document_response
from .idempotency import idempotent
from .objects import document_object, rfc3339, subscription_object

T = services.TransactionStatus

# --- inputs ------------------------------------------------------------------------

# Bounds, so that no number a client sends overflows a database column (a 400,
# not a 500): ids fit a bigint, running numbers and quantities an integer.
MAX_ID = 2**63 - 1
MAX_INT = 2**31 - 1


ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 10**17 - 1}
SUBSCRIPTION_ID_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 10**17 - 1},
        {"type": "string", "pattern": "^S?[1-9][0-9]{0,16}$"},
    ],
    "description": "1042, or S1042",
}


@extend_schema_field(SUBSCRIPTION_ID_SCHEMA)
class SubscriptionIdField(serializers.Field):
    """A subscription id as the original platform sends it: a JSON integer;
    ``"1042"`` and ``"S1042"`` are accepted too."""

    default_error_messages = {"invalid": 'Expected a subscription id: 1042 (or "S1042").'}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        pk = parse_id(str(data), "S")
        if pk is None or not 1 <= pk <= MAX_ID:
            self.fail("invalid")
        return int(pk or 0)

    def to_representation(self, value: int) -> int:
        return value


class ChangeInput(serializers.Serializer):
    SubscriptionId = SubscriptionIdField()
    GenerateMail = serializers.BooleanField(default=True)


class RenewalTypeInput(ChangeInput):
    RenewalType = serializers.ChoiceField(choices=RenewalType.values)


class ItemsInput(ChangeInput):
    Items = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_INT),
        allow_empty=False,
        min_length=1,
    )


class DeactivateInput(ItemsInput):
    AllowReinstate = serializers.BooleanField(default=True)


class RemoveInput(ChangeInput):
    RunningNumber = serializers.IntegerField(min_value=1, max_value=MAX_INT)


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeText(serializers.CharField):
    """An RFC 3339 date-time, parsed by the view (its own messages)."""


class NextBillingDateInput(ChangeInput):
    NextBillingDate = DateTimeText(max_length=40)


class RenewInput(ChangeInput):
    ResetBillingInterval = serializers.BooleanField(default=False)


ALIGNMENT_FLAGS = {
    "GetCustomerPricePreviewOnly": {"type": "boolean", "default": False},
    "AlignToCurrentInterval": {"type": "boolean", "default": False},
    "ExtendInterval": {"type": "boolean", "default": False},
}


@extend_schema_field(
    {
        # ExtendInterval needs AlignToCurrentInterval: either aligned, or not extended.
        "anyOf": [
            {
                "type": "object",
                "properties": {**ALIGNMENT_FLAGS, "AlignToCurrentInterval": {"enum": [True]}},
                "required": ["AlignToCurrentInterval"],
            },
            {
                "type": "object",
                "properties": {**ALIGNMENT_FLAGS, "ExtendInterval": {"enum": [False]}},
            },
        ]
    }
)
class AlignmentInput(serializers.Serializer):
    GetCustomerPricePreviewOnly = serializers.BooleanField(default=False)
    AlignToCurrentInterval = serializers.BooleanField(default=False)
    ExtendInterval = serializers.BooleanField(default=False)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["ExtendInterval"] and not data["AlignToCurrentInterval"]:
            raise serializers.ValidationError({"ExtendInterval": "Needs AlignToCurrentInterval."})
        return data


@extend_schema_field({"type": "number", "minimum": 0, "maximum": 9999999999, "multipleOf": 0.0001})
class PriceField(serializers.DecimalField):
    """A price: a JSON number (or a string of one), at most 4 decimal places."""


class PriceInput(serializers.Serializer):
    CurrencyId = serializers.RegexField(r"^[A-Za-z]{3}$", min_length=3, max_length=3)
    IsGross = serializers.BooleanField(default=True)
    Value = PriceField(
        max_digits=16, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("9999999999")
    )


class ItemChangeInput(ChangeInput):
    AlignmentSettings = AlignmentInput(required=False)
    CustomerPrice = PriceInput(required=False)


class AddItemInput(ItemChangeInput):
    ProductId = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    Quantity = serializers.IntegerField(min_value=1, max_value=MAX_INT, default=1)


class UpdateItemInput(ItemChangeInput):
    RunningNumber = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    ProductId = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    Quantity = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)
    UpdateAction = serializers.ChoiceField(
        choices=["Update", "Upgrade", "Downgrade"], default="Update"
    )


class IncreaseQuantityInput(ChangeInput):
    RunningNumber = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    Quantity = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    AlignmentSettings = AlignmentInput(required=False)


class ItemPriceInput(ChangeInput):
    RunningNumber = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    CustomerPrice = PriceInput()
    Quantity = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False)
    AlignmentSettings = AlignmentInput(required=False)


class CustomerInput(serializers.Serializer):
    Email = serializers.EmailField(max_length=254)
    FirstName = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    LastName = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    Company = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    ReferenceId = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )


class LineInput(serializers.Serializer):
    ProductId = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    Quantity = serializers.IntegerField(min_value=1, max_value=MAX_INT, default=1)


CARD_FIELDS = {
    "CardNumber": {"type": "string", "pattern": "^[0-9]{12,19}$"},
    "ExpiryMonth": {"type": "integer", "minimum": 1, "maximum": 12},
    "ExpiryYear": {"type": "integer", "minimum": 2000, "maximum": 2200},
}


@extend_schema_field(
    {
        "oneOf": [
            {
                "type": "object",
                "properties": {"Type": {"enum": [PaymentKind.CARD.value]}, **CARD_FIELDS},
                "required": ["Type", "CardNumber", "ExpiryMonth", "ExpiryYear"],
            },
            {
                "type": "object",
                "properties": {"Type": {"enum": [PaymentKind.INVOICE.value]}},
                "required": ["Type"],
            },
        ]
    }
)
class PaymentInput(serializers.Serializer):
    Type = serializers.ChoiceField(choices=PaymentKind.values)
    CardNumber = serializers.RegexField(
        r"^[0-9]{12,19}$", max_length=19, required=False, help_text="12 to 19 digits"
    )
    ExpiryMonth = serializers.IntegerField(required=False, min_value=1, max_value=12)
    ExpiryYear = serializers.IntegerField(required=False, min_value=2000, max_value=2200)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["Type"] == PaymentKind.CARD:
            missing = [f for f in ("CardNumber", "ExpiryMonth", "ExpiryYear") if f not in data]
            if missing:
                raise serializers.ValidationError({f: "Required for a card." for f in missing})
        return data


class PurchaseInput(serializers.Serializer):
    Customer = CustomerInput()
    Items = serializers.ListField(child=LineInput(), allow_empty=False, min_length=1)
    PaymentMethod = PaymentInput()
    ConfirmAutoRenewal = serializers.BooleanField(default=True)
    GenerateMail = serializers.BooleanField(default=True)


class RefundLineInput(serializers.Serializer):
    RunningNumber = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    Quantity = serializers.IntegerField(min_value=1, max_value=MAX_INT)


@extend_schema_field({"type": "number", "minimum": 0.01, "maximum": 9999999999, "multipleOf": 0.01})
class AmountField(serializers.DecimalField):
    """An amount of money: a JSON number (or a string of one), cents at most."""


class RefundInput(serializers.Serializer):
    PurchaseId = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    Amount = AmountField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal("9999999999"),
        required=False,
        help_text="VAT included; without Amount and Lines, all that is left",
    )
    Lines = serializers.ListField(
        child=RefundLineInput(),
        required=False,
        min_length=1,
        help_text="Lines and quantities to refund; when given, they decide the amount",
    )
    Reason = serializers.ChoiceField(choices=RefundReason.values, default=RefundReason.REQUESTED)
    Note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


# --- what the schema says -------------------------------------------------------------

ANSWERS = {code: OpenApiTypes.OBJECT for code in (200, 400, 401, 404, 409, 429)}
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="The same key with the same body returns the first answer.",
)


def documented(request: type[serializers.Serializer]) -> Any:
    return extend_schema(request=request, responses=ANSWERS, parameters=[IDEMPOTENCY_KEY])


# --- helpers -----------------------------------------------------------------------


def _credential(request: Request) -> ApiCredential:
    credential = request.auth
    assert isinstance(credential, ApiCredential)
    return credential


def _client(request: Request) -> Client:
    return _credential(request).client


def _actor(request: Request) -> services.Actor:
    return services.Actor.api(_credential(request).label)


def _valid(kind: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = kind(data=request.data)
    serializer.is_valid(raise_exception=True)
    data: dict[str, Any] = serializer.validated_data
    return data


def _subscriptions(request: Request) -> QuerySet[Subscription]:
    return Subscription.objects.select_related("client", "customer").filter(client=_client(request))


def _subscription(request: Request, value: int | str) -> Subscription:
    pk = parse_id(str(value), "S")
    if pk is None or pk > MAX_ID:
        raise InvalidInput(
            f"{value!r} is not a subscription id.",
            fields={"SubscriptionId": "Expected a subscription id: 1042 (or S1042)."},
        )
    sub = _subscriptions(request).filter(pk=pk).first()
    if sub is None:
        raise NotFound(f"Subscription S{pk} was not found.")
    return sub


def _ok(request: Request, sub: Subscription) -> Response:
    """OK with the subscription as it is now (after the change)."""
    fresh = _subscriptions(request).get(pk=sub.pk)
    return Response({"ResultMessage": "OK", "Subscription": subscription_object(fresh)})


# --- reads -------------------------------------------------------------------------


@extend_schema(
    parameters=[
        OpenApiParameter(
            "subscriptionId",
            SUBSCRIPTION_ID_SCHEMA,
            required=True,
            description="1042 (S1042 is accepted too)",
        ),
        OpenApiParameter("isCurrent", bool),
    ],
    responses=ANSWERS,
)
@api_view(["GET"])
def getsubscription(request: Request) -> Response:
    value = request.query_params.get("subscriptionId", "")
    if not value:
        raise InvalidInput(
            "subscriptionId is required.", fields={"subscriptionId": "This field is required."}
        )
    return Response(
        {"ResultMessage": "OK", "Subscription": subscription_object(_subscription(request, value))}
    )


CUSTOMER_KEYS = {
    "customerId": "pk",
    "customerReferenceId": "reference_id",
    "customerEmail": "email",
}


CUSTOMER_KEY_SCHEMAS = {
    "customerId": {"type": "string", "pattern": "^[1-9][0-9]{0,16}$"},
    "customerReferenceId": {"type": "string", "minLength": 1, "maxLength": 100},
    "customerEmail": {"type": "string", "minLength": 3, "maxLength": 254},
}


@extend_schema(
    parameters=[
        OpenApiParameter(
            name,
            schema,
            description="Give one of customerId, customerReferenceId, customerEmail "
            "(if several are given, the first in that order counts).",
        )
        for name, schema in CUSTOMER_KEY_SCHEMAS.items()
    ],
    responses=ANSWERS,
)
@api_view(["GET"])
def getsubscriptionsforcustomer(request: Request) -> Response:
    given = [(k, request.query_params.get(k, "")) for k in CUSTOMER_KEYS]
    given = [(k, v) for k, v in given if v]
    if not given:
        raise InvalidInput(
            "Give one of customerId, customerReferenceId, customerEmail.",
            fields={k: "Give one of these." for k in CUSTOMER_KEYS},
        )
    key, value = given[0]  # several: the first in the documented order counts
    if key == "customerId" and not (value.isdigit() and int(value) <= MAX_ID):
        raise InvalidInput("customerId is a number.", fields={key: "Expected a number."})
    if key == "customerEmail":
        value = value.strip().lower()
    customer = Customer.objects.filter(client=_client(request), **{CUSTOMER_KEYS[key]: value})
    found = None if "\x00" in value else customer.first()  # no stored text holds a NUL
    if found is None:
        raise NotFound("No such customer.")
    subs = _subscriptions(request).filter(customer=found).order_by("pk")
    return Response(
        {"ResultMessage": "OK", "Subscriptions": [subscription_object(s) for s in subs]}
    )


# --- changes -----------------------------------------------------------------------


@documented(RenewalTypeInput)
@api_view(["POST"])
@idempotent
def updatesubscriptionrenewaltype(request: Request) -> Response:
    data = _valid(RenewalTypeInput, request)
    sub = _subscription(request, data["SubscriptionId"])
    services.switch_renewal_type(
        subscription=sub,
        renewal_type=data["RenewalType"],
        actor=_actor(request),
        generate_mail=data["GenerateMail"],
    )
    return _ok(request, sub)


@documented(DeactivateInput)
@api_view(["POST"])
@idempotent
def deactivatesubscriptionitems(request: Request) -> Response:
    data = _valid(DeactivateInput, request)
    sub = _subscription(request, data["SubscriptionId"])
    services.deactivate_items(
        subscription=sub,
        running_nos=data["Items"],
        allow_reinstate=data["AllowReinstate"],
        actor=_actor(request),
        generate_mail=data["GenerateMail"],
    )
    return _ok(request, sub)


@documented(ItemsInput)
@api_view(["POST"])
@idempotent
def reinstatesubscriptionitems(request: Request) -> Response:
    data = _valid(ItemsInput, request)
    sub = _subscription(request, data["SubscriptionId"])
    services.reinstate_items(
        subscription=sub,
        running_nos=data["Items"],
        actor=_actor(request),
        generate_mail=data["GenerateMail"],
    )
    return _ok(request, sub)


@documented(RemoveInput)
@api_view(["POST"])
@idempotent
def removesubscriptionitem(request: Request) -> Response:
    data = _valid(RemoveInput, request)
    sub = _subscription(request, data["SubscriptionId"])
    services.remove_item(subscription=sub, running_no=data["RunningNumber"], actor=_actor(request))
    return _ok(request, sub)


@documented(NextBillingDateInput)
@api_view(["POST"])
@idempotent
def updatenextbillingdate(request: Request) -> Response:
    data = _valid(NextBillingDateInput, request)
    try:
        moment = parse_datetime(data["NextBillingDate"])
    except ValueError:  # well-formed but impossible, e.g. 2027-02-30
        moment = None
    if moment is None:
        raise InvalidInput(
            "NextBillingDate is not an RFC 3339 date-time.",
            fields={"NextBillingDate": "Expected e.g. 2026-12-31T00:00:00Z."},
        )
    sub = _subscription(request, data["SubscriptionId"])
    services.change_next_billing_date(
        subscription=sub,
        next_billing_date=moment,
        actor=_actor(request),
        generate_mail=data["GenerateMail"],
    )
    return _ok(request, sub)


@documented(RenewInput)
@api_view(["POST"])
@idempotent
def renewsubscription(request: Request) -> Response:
    data = _valid(RenewInput, request)
    sub = _subscription(request, data["SubscriptionId"])
    outcome = services.renew_early(
        subscription=sub,
        dates=services.NextDates.FROM_PAYMENT
        if data["ResetBillingInterval"]
        else services.NextDates.SCHEDULE,
        actor=_actor(request),
        generate_mail=data["GenerateMail"],
    )
    fresh = _subscriptions(request).get(pk=sub.pk)
    return Response(
        {
            "ResultMessage": "OK" if outcome.status == T.SUCCESS else outcome.message,
            "TransactionStatus": outcome.status,
            "NextBillingDate": rfc3339(fresh.next_billing_date),
            "Subscription": subscription_object(fresh),
        }
    )


@documented(PurchaseInput)
@api_view(["POST"])
@idempotent
def createpurchase(request: Request) -> Response:
    """A server-side sign-up: exactly what the checkout does."""
    data = _valid(PurchaseInput, request)
    client = _client(request)
    wanted = [line["ProductId"] for line in data["Items"]]
    products = {p.pk: p for p in Product.objects.filter(client=client, pk__in=wanted)}
    unknown = [pk for pk in wanted if pk not in products]
    if unknown:
        raise NotFound(
            f"Unknown product(s): {', '.join(map(str, unknown))}.",
            fields={"Items": f"No product {', '.join(map(str, unknown))} for this client."},
        )
    customer, payment = data["Customer"], data["PaymentMethod"]
    result = services.sign_up(
        client=client,
        customer=services.CustomerInput(
            email=customer["Email"],
            first_name=customer["FirstName"],
            last_name=customer["LastName"],
            company=customer["Company"],
            reference_id=customer["ReferenceId"],
        ),
        lines=[
            services.Line(products[line["ProductId"]], line["Quantity"]) for line in data["Items"]
        ],
        payment=services.CardInput(
            number=payment["CardNumber"],
            expiry_month=payment["ExpiryMonth"],
            expiry_year=payment["ExpiryYear"],
        )
        if payment["Type"] == PaymentKind.CARD
        else services.InvoiceInput(),
        confirm_auto_renewal=data["ConfirmAutoRenewal"],
        actor=_actor(request),
        generate_mail=data["GenerateMail"],
    )
    return Response(
        {
            "ResultMessage": "OK"
            if result.transaction_status in (T.SUCCESS, T.PENDING)
            else result.message,
            "PurchaseId": result.purchase.pk,
            "CustomerId": result.purchase.customer_id,
            "SubscriptionIds": [s.pk for s in result.subscriptions],
            "TransactionStatus": result.transaction_status,
        }
    )


# --- refunds and documents (docs/documents.md) ----------------------------------------------


def _query_id(request: Request, name: str, what: str) -> int:
    """The id in query parameter ``name``, or a 400 saying what it should be."""
    pk = parse_id(request.query_params.get(name, ""))
    if pk is None or pk > MAX_ID:
        raise InvalidInput(f"{name} is required: {what}.", fields={name: f"Expected {what}."})
    return pk


def _purchase(request: Request, pk: int) -> Purchase:
    purchase = Purchase.objects.filter(client=_client(request), pk=pk).first()
    if purchase is None:
        raise NotFound(f"Purchase {pk} was not found.")
    return purchase


@documented(RefundInput)
@api_view(["POST"])
@idempotent
def refundpurchase(request: Request) -> Response:
    """Refund all or part of a paid purchase: the gateway gives the money back,
    a credit note is issued (409 when there is not that much left, or the
    gateway refuses; nothing is recorded then)."""
    data = _valid(RefundInput, request)
    purchase = _purchase(request, data["PurchaseId"])
    quantities: dict[int, int] = {}
    for line in data.get("Lines") or []:
        no = line["RunningNumber"]
        quantities[no] = quantities.get(no, 0) + line["Quantity"]
    key = request.headers.get("Idempotency-Key", "").strip()
    note = services.refund(
        purchase=purchase,
        actor=_actor(request),
        amount=None if quantities else data.get("Amount"),
        quantities=quantities or None,
        reason=data["Reason"],
        note=data["Note"],
        # The refund's key (at most 100 characters) from the header's (up to 200).
        key=f"api:{hashlib.sha256(key.encode()).hexdigest()}" if key else None,
    )
    return Response({"ResultMessage": "OK", "CreditNote": document_object(note)})


@extend_schema(
    parameters=[OpenApiParameter("purchaseId", ID_SCHEMA, required=True)], responses=ANSWERS
)
@api_view(["GET"])
def getpurchasedocuments(request: Request) -> Response:
    """A purchase's invoice (issued now if it is paid and has none) and credit notes."""
    purchase = _purchase(request, _query_id(request, "purchaseId", "a purchase id"))
    if purchase.status in Purchase.INVOICED:
        documents.invoice_for(purchase)
    found = purchase.documents.order_by("kind", "number")
    return Response({"ResultMessage": "OK", "Documents": [document_object(d) for d in found]})


@extend_schema(
    parameters=[OpenApiParameter("documentId", ID_SCHEMA, required=True)],
    responses={
        200: OpenApiTypes.BINARY,
        400: OpenApiTypes.OBJECT,
        401: OpenApiTypes.OBJECT,
        404: OpenApiTypes.OBJECT,
        429: OpenApiTypes.OBJECT,
    },
)
@api_view(["GET"])
def getdocumentpdf(request: Request) -> HttpResponse:
    """An invoice or credit note as PDF (``application/pdf``)."""
    pk = _query_id(request, "documentId", "a document id")
    doc = Document.objects.filter(client=_client(request), pk=pk).first()
    if doc is None:
        raise NotFound(f"Document {pk} was not found.")
    return document_response(doc, pdf=True)


# --- item changes (docs/api.md) ------------------------------------------------------------


def _product(request: Request, pk: int | None) -> Product | None:
    if pk is None:
        return None
    product = Product.objects.filter(client=_client(request), pk=pk).first()
    if product is None:
        raise NotFound(
            f"Unknown product {pk}.", fields={"ProductId": f"No product {pk} for this client."}
        )
    return product


def _item_change(request: Request, data: dict[str, Any], change: services.ItemChange) -> Response:
    """Run (or preview) the change and answer with its prices."""
    sub = _subscription(request, data["SubscriptionId"])
    settings = data.get("AlignmentSettings") or {}
    alignment = services.Alignment(
        preview_only=settings.get("GetCustomerPricePreviewOnly", False),
        align=settings.get("AlignToCurrentInterval", False),
        extend=settings.get("ExtendInterval", False),
    )
    quote = services.change_item(
        subscription=sub,
        change=change,
        alignment=alignment,
        actor=_actor(request),
        generate_mail=data["GenerateMail"],
    )
    now_gross, now_net, now_vat = quote.charge_split
    next_gross, next_net, next_vat = quote.next_billing_split
    fresh = _subscriptions(request).get(pk=sub.pk)
    return Response(
        {
            "ResultMessage": "OK",
            "PreviewOnly": alignment.preview_only,
            "RunningNumber": quote.running_no,
            "AlignmentCustomerGrossPrice": str(now_gross),
            "AlignmentCustomerNetPrice": str(now_net),
            "AlignmentCustomerVatPrice": str(now_vat),
            "NextBillingCustomerGrossPrice": str(next_gross),
            "NextBillingCustomerNetPrice": str(next_net),
            "NextBillingCustomerVatPrice": str(next_vat),
            "PriceCurrencyId": quote.currency,
            "PurchaseId": quote.purchase.pk if quote.purchase else None,
            "Subscription": subscription_object(fresh),
        }
    )


def _price(data: dict[str, Any]) -> services.CustomerPrice | None:
    price = data.get("CustomerPrice")
    if not price:
        return None
    return services.CustomerPrice(
        currency=price["CurrencyId"].upper(), value=price["Value"], is_gross=price["IsGross"]
    )


@documented(AddItemInput)
@api_view(["POST"])
@idempotent
def addsubscriptionitem(request: Request) -> Response:
    data = _valid(AddItemInput, request)
    change = services.ItemChange(
        kind=services.ChangeKind.ADD,
        product=_product(request, data["ProductId"]),
        quantity=data["Quantity"],
        price=_price(data),
    )
    return _item_change(request, data, change)


@documented(UpdateItemInput)
@api_view(["POST"])
@idempotent
def updatesubscriptionitem(request: Request) -> Response:
    data = _valid(UpdateItemInput, request)
    change = services.ItemChange(
        kind=services.ChangeKind.UPDATE,
        running_no=data["RunningNumber"],
        product=_product(request, data.get("ProductId")),
        quantity=data.get("Quantity"),
        price=_price(data),
        update_action=data["UpdateAction"],
    )
    return _item_change(request, data, change)


@documented(IncreaseQuantityInput)
@api_view(["POST"])
@idempotent
def increasesubscriptionitemquantity(request: Request) -> Response:
    data = _valid(IncreaseQuantityInput, request)
    change = services.ItemChange(
        kind=services.ChangeKind.INCREASE_QUANTITY,
        running_no=data["RunningNumber"],
        add_quantity=data["Quantity"],
    )
    return _item_change(request, data, change)


@documented(ItemPriceInput)
@api_view(["POST"])
@idempotent
def updatesubscriptionitemprice(request: Request) -> Response:
    data = _valid(ItemPriceInput, request)
    change = services.ItemChange(
        kind=services.ChangeKind.PRICE,
        running_no=data["RunningNumber"],
        quantity=data.get("Quantity"),
        price=_price(data),
    )
    return _item_change(request, data, change)


@extend_schema(exclude=True)
@api_view(["GET", "POST"])
def unknown_endpoint(request: Request, name: str) -> Response:
    raise NotFound(f"There is no endpoint {name!r}.")
