"""The payment gateway interface and the built-in test gateway (SPEC 5.3).

``charge(amount, currency, payment_method, idempotency_key)`` answers
approved, declined or error. The same idempotency key always gets the first
answer back and never charges twice, which is what makes a retried renewal
safe after a crash between "charged" and "recorded".
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from customers.models import PaymentMethod

from .models import GatewayCharge


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


class PaymentGateway(Protocol):
    def charge(
        self,
        amount: Decimal,
        currency: str,
        payment_method: PaymentMethod,
        idempotency_key: str,
    ) -> ChargeResult: ...


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


class TestGateway:
    """A real gateway component with a ledger (``GatewayCharge``), answering by
    test card number, with optional latency (``TEST_GATEWAY_LATENCY_MS``)."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, latency_ms: int | None = None) -> None:
        self.latency_ms = settings.TEST_GATEWAY_LATENCY_MS if latency_ms is None else latency_ms

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
        if payment_method.kind != PaymentMethod.Kind.CARD:
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
                    card_number=payment_method.card_number,
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

    def _decide(self, payment_method: PaymentMethod) -> ChargeResult:
        card_number = payment_method.card_number
        reference = f"tg_{uuid.uuid4().hex[:20]}"
        if card_number == CARD_APPROVED:
            return ChargeResult(Outcome.APPROVED, reference)
        if card_number == CARD_DECLINED:
            return ChargeResult(Outcome.DECLINED, reference, "Card declined by issuer.")
        if card_number == CARD_TRANSIENT_ERROR:
            return ChargeResult(Outcome.ERROR, message="Processor timeout; try again.")
        if card_number == CARD_DECLINES_AFTER_FIRST:
            charged_before = GatewayCharge.objects.filter(
                payment_method_ref=str(payment_method.pk), outcome=Outcome.APPROVED
            ).exists()
            if charged_before:
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
