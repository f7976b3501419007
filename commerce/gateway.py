"""The payment gateway interface and the built-in test gateway
(docs/renewals.md, "Payment gateway").

``tokenize(number, expiry_month, expiry_year)`` turns a card number into the
gateway's token: the number itself is never stored here, only the token,
brand, last four digits and expiry (docs/deploy.md, "Card data").
``charge(amount, currency, payment_method, idempotency_key)`` answers
approved, declined or error. The same idempotency key always gets the first
answer back and never charges twice, which is what makes a retried renewal
safe after a crash between "charged" and "recorded".
"""

from __future__ import annotations

import enum
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils.module_loading import import_string

from .bulk import insert_rows, new
from .models import GatewayCharge


class PaymentKind(models.TextChoices):
    CARD = "card", "Card"
    INVOICE = "invoice", "Invoice"


class PaymentMethod(Protocol):
    """What the gateway needs of a stored payment method (``customers``
    keeps them; this app sits below it)."""

    @property
    def pk(self) -> int: ...

    kind: str
    token: str


@dataclass(frozen=True)
class CardToken:
    """What the gateway gives back for a card number, and all we keep of it."""

    token: str
    brand: str
    last4: str


class Outcome(enum.StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"  # transient: retry later, this is not a decline


@dataclass(frozen=True)
class ChargeResult:
    outcome: Outcome
    reference: str = ""
    message: str = ""

    @property
    def approved(self) -> bool:
        return self.outcome == Outcome.APPROVED


@dataclass(frozen=True)
class ChargeRequest:
    amount: Decimal
    currency: str
    payment_method: PaymentMethod
    idempotency_key: str


class PaymentGateway(Protocol):
    def tokenize(self, number: str, expiry_month: int, expiry_year: int) -> CardToken:
        """The gateway keeps the card; we keep its token."""
        ...

    def charge(
        self,
        amount: Decimal,
        currency: str,
        payment_method: PaymentMethod,
        idempotency_key: str,
    ) -> ChargeResult: ...

    def charge_many(self, requests: list[ChargeRequest]) -> list[ChargeResult]:
        """The same as ``charge`` for each request, in order; a gateway may
        send them concurrently."""
        ...

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The answer the gateway gave to a key, if it ever saw it."""
        ...

    def refund(
        self, charge_key: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        """Give back (part of) the approved charge made with ``charge_key``;
        the same ``idempotency_key`` refunds once."""
        ...


CARD_APPROVED = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_TRANSIENT_ERROR = "4000000000000119"
CARD_DECLINES_AFTER_FIRST = "4000000000000341"
TEST_CARDS = {
    CARD_APPROVED: "always approved",
    CARD_DECLINED: "always declined",
    CARD_TRANSIENT_ERROR: "transient processor error",
    CARD_DECLINES_AFTER_FIRST: "approved at sign-up, declined on every later charge",
}


class Behaviour(enum.StrEnum):
    """How the test gateway answers for a card: the first part of its token."""

    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"
    ONCE = "once"  # approved on the first charge, declined after
    UNKNOWN = "unknown"


BEHAVIOUR = {
    CARD_APPROVED: Behaviour.APPROVED,
    CARD_DECLINED: Behaviour.DECLINED,
    CARD_TRANSIENT_ERROR: Behaviour.ERROR,
    CARD_DECLINES_AFTER_FIRST: Behaviour.ONCE,
}


def brand_of(number: str) -> str:
    """The card brand by its leading digits (IIN ranges)."""
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "Mastercard"
    if number[:2] in {"34", "37"}:
        return "Amex"
    return "Card"


def token_for_test_card(number: str) -> str:
    """A test gateway token for a test card number (``tok_<behaviour>_<random>``)."""
    behaviour = BEHAVIOUR.get(number.replace(" ", ""), Behaviour.UNKNOWN)
    return f"tok_{behaviour}_{uuid.uuid4().hex[:16]}"


def _behaviour(token: str) -> Behaviour:
    parts = token.split("_")
    try:
        return Behaviour(parts[1]) if len(parts) > 2 and parts[0] == "tok" else Behaviour.UNKNOWN
    except ValueError:
        return Behaviour.UNKNOWN


class TestGateway:
    """A real gateway component with a ledger (``GatewayCharge``), answering by
    test card number, with optional latency (``TEST_GATEWAY_LATENCY_MS``)."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, latency_ms: int | None = None) -> None:
        self.latency_ms = settings.TEST_GATEWAY_LATENCY_MS if latency_ms is None else latency_ms

    def tokenize(self, number: str, expiry_month: int, expiry_year: int) -> CardToken:
        digits = number.replace(" ", "")
        return CardToken(token_for_test_card(digits), brand_of(digits), digits[-4:])

    def charge(
        self,
        amount: Decimal,
        currency: str,
        payment_method: PaymentMethod,
        idempotency_key: str,
    ) -> ChargeResult:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        previous = GatewayCharge.objects.filter(idempotency_key=idempotency_key).first()
        if previous is not None:
            return _result(previous)
        if payment_method.kind != PaymentKind.CARD:
            return ChargeResult(
                Outcome.DECLINED, message="Offline payment methods are not charged."
            )
        result = self._decide(payment_method)
        if result.outcome == Outcome.ERROR:
            return result  # nothing happened at the processor; a retry may succeed
        try:
            with transaction.atomic():
                row = GatewayCharge.objects.create(
                    idempotency_key=idempotency_key,
                    payment_token=payment_method.token,
                    payment_method_ref=str(payment_method.pk),
                    amount=amount,
                    currency=currency,
                    outcome=result.outcome,
                    reference=result.reference,
                    message=result.message,
                )
        except IntegrityError:  # a concurrent call with the same key won
            row = GatewayCharge.objects.get(idempotency_key=idempotency_key)
        return _result(row)

    def charge_many(self, requests: list[ChargeRequest]) -> list[ChargeResult]:
        """A renewal batch in a constant number of ledger queries (one read
        and one COPY on PostgreSQL when no key was seen before). Latency is
        spent per charge, ``TEST_GATEWAY_CONCURRENCY`` at a time, as a client
        with a connection pool to a real processor would."""
        keys = [r.idempotency_key for r in requests]
        known = {
            row.idempotency_key: row
            for row in GatewayCharge.objects.filter(idempotency_key__in=keys)
        }
        # A key asked for twice in one batch is charged once.
        fresh = list(
            {r.idempotency_key: r for r in requests if r.idempotency_key not in known}.values()
        )
        charged_before: set[str] = set()
        if any(_behaviour(r.payment_method.token) == Behaviour.ONCE for r in fresh):
            charged_before = set(
                GatewayCharge.objects.filter(
                    payment_method_ref__in={str(r.payment_method.pk) for r in fresh},
                    outcome=Outcome.APPROVED,
                ).values_list("payment_method_ref", flat=True)
            )
        decided = {r.idempotency_key: self._decide(r.payment_method, charged_before) for r in fresh}
        self._wait(len(fresh))
        rows = [
            new(
                GatewayCharge,
                idempotency_key=r.idempotency_key,
                payment_token=r.payment_method.token,
                payment_method_ref=str(r.payment_method.pk),
                amount=r.amount,
                currency=r.currency,
                outcome=decided[r.idempotency_key].outcome,
                reference=decided[r.idempotency_key].reference,
                message=decided[r.idempotency_key].message,
            )
            for r in fresh
            if decided[r.idempotency_key].outcome != Outcome.ERROR
        ]
        try:
            with transaction.atomic():
                insert_rows(rows)
            known.update((row.idempotency_key, row) for row in rows)
        except IntegrityError:  # a concurrent batch with some of these keys won: its answers
            GatewayCharge.objects.bulk_create(rows, ignore_conflicts=True)
            known.update(
                (row.idempotency_key, row)
                for row in GatewayCharge.objects.filter(
                    idempotency_key__in=[r.idempotency_key for r in fresh]
                )
            )
        return [_result(known[key]) if key in known else decided[key] for key in keys]

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        row = GatewayCharge.objects.filter(idempotency_key=idempotency_key).first()
        return _result(row) if row is not None else None

    def refund(
        self, charge_key: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        previous = GatewayCharge.objects.filter(idempotency_key=idempotency_key).first()
        if previous is not None:
            return _result(previous)
        original = GatewayCharge.objects.filter(
            idempotency_key=charge_key, outcome=Outcome.APPROVED
        ).first()
        if original is None or amount > original.amount:
            return ChargeResult(Outcome.DECLINED, message="Nothing to refund for that charge.")
        row = GatewayCharge.objects.create(
            idempotency_key=idempotency_key,
            payment_token=original.payment_token,
            payment_method_ref=original.payment_method_ref,
            amount=amount,
            currency=currency,
            outcome=Outcome.APPROVED,
            reference=f"tr_{uuid.uuid4().hex[:20]}",
            message=f"Refund of {original.reference}",
        )
        return _result(row)

    def _wait(self, charges: int) -> None:
        if not self.latency_ms or not charges:
            return
        with ThreadPoolExecutor(max_workers=settings.TEST_GATEWAY_CONCURRENCY) as pool:
            list(pool.map(lambda _: time.sleep(self.latency_ms / 1000), range(charges)))

    def _decide(
        self, payment_method: PaymentMethod, charged_before: set[str] | None = None
    ) -> ChargeResult:
        behaviour = _behaviour(payment_method.token)
        reference = f"tg_{uuid.uuid4().hex[:20]}"
        if behaviour == Behaviour.APPROVED:
            return ChargeResult(Outcome.APPROVED, reference)
        if behaviour == Behaviour.DECLINED:
            return ChargeResult(Outcome.DECLINED, reference, "Card declined by issuer.")
        if behaviour == Behaviour.ERROR:
            return ChargeResult(Outcome.ERROR, message="Processor timeout; try again.")
        if behaviour == Behaviour.ONCE:
            if charged_before is None:
                charged_before = set(
                    GatewayCharge.objects.filter(
                        payment_method_ref=str(payment_method.pk), outcome=Outcome.APPROVED
                    ).values_list("payment_method_ref", flat=True)
                )
            if str(payment_method.pk) in charged_before:
                return ChargeResult(Outcome.DECLINED, reference, "Insufficient funds.")
            return ChargeResult(Outcome.APPROVED, reference)
        return ChargeResult(
            Outcome.DECLINED, reference, "Unknown test card; use 4242 4242 4242 4242."
        )


def _result(row: GatewayCharge) -> ChargeResult:
    return ChargeResult(Outcome(row.outcome), row.reference, row.message)


def get_gateway() -> PaymentGateway:
    gateway: PaymentGateway = import_string(settings.PAYMENT_GATEWAY)()
    return gateway
