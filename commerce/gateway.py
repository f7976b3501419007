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

import asyncio
import enum
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q, Sum
from django.utils.module_loading import import_string

from .bulk import insert_rows, new
from .models import GatewayCharge

T = TypeVar("T")


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
    client_id: int = 0  # whose charge: in-flight calls are bounded per client


# --- calls in flight ------------------------------------------------------------------
#
# A worker process keeps up to GATEWAY_MAX_IN_FLIGHT gateway calls in flight,
# at most GATEWAY_MAX_IN_FLIGHT_PER_CLIENT of one client, on one asyncio event
# loop (async I/O: a call waiting on the network costs a coroutine, not a
# thread). The loop runs in a daemon thread made on first use in each (forked)
# worker process and kept; the bounds are semaphores on that loop.


@dataclass
class _Network:
    pid: int
    loop: asyncio.AbstractEventLoop
    overall: asyncio.Semaphore
    per_client: dict[int, asyncio.Semaphore]


_pool: _Network | None = None
_pool_lock = threading.Lock()


def _network() -> _Network:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # none yet, or inherited by fork
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="gateway-io", daemon=True).start()
            _pool = _Network(
                os.getpid(), loop, asyncio.Semaphore(settings.GATEWAY_MAX_IN_FLIGHT), {}
            )
        return _pool


def _client_slots(network: _Network, client_id: int) -> asyncio.Semaphore:
    with _pool_lock:
        if client_id not in network.per_client:
            limit = settings.GATEWAY_MAX_IN_FLIGHT_PER_CLIENT
            network.per_client[client_id] = asyncio.Semaphore(limit)
        return network.per_client[client_id]


def in_flight(calls: list[Callable[[], Awaitable[T]]], *, client_id: int = 0) -> list[T]:
    """Run ``calls`` (each one gateway call, bounded by its own timeout)
    concurrently on the process's event loop, at most the client's share
    and the process's bound at once; their results in order."""
    return [future.result() for future in start_in_flight(calls, client_id=client_id)]


def start_in_flight(
    calls: list[Callable[[], Awaitable[T]]], *, client_id: int = 0
) -> list[Future[T]]:
    """``in_flight`` without waiting for the answers: the calls' futures."""
    network = _network()
    mine = _client_slots(network, client_id)

    async def bounded(call: Callable[[], Awaitable[T]]) -> T:
        async with network.overall, mine:
            return await call()

    return [asyncio.run_coroutine_threadsafe(bounded(call), network.loop) for call in calls]


class Answers:
    """The answers to requests sent with ``send_many``: ``ready()`` says
    whether collecting them would not wait; calling collects them, in order."""

    def __init__(
        self, on_the_wire: list[Future[Any]], collect: Callable[[], list[ChargeResult]]
    ) -> None:
        self._on_the_wire, self._collect = on_the_wire, collect

    def ready(self) -> bool:
        return all(future.done() for future in self._on_the_wire)

    def __call__(self) -> list[ChargeResult]:
        return self._collect()


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

    def send_many(self, requests: list[ChargeRequest]) -> Answers:
        """``charge_many`` in two steps: send the requests and return at once;
        calling what it returns waits for the answers (in order). The caller
        does other work while the charges are on the network."""
        ...

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        """The answer the gateway gave to a key, if it ever saw it."""
        ...

    def refund(
        self, charge_key: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        """Give back (part of) the approved charge ``charge_key`` (the key it
        was made with, or its reference); the same ``idempotency_key`` refunds
        once. Declined when more than is left of the charge is asked for."""
        ...


CARD_APPROVED = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_TRANSIENT_ERROR = "4000000000000119"
CARD_DECLINES_AFTER_FIRST = "4000000000000341"
CARD_REFUND_DECLINED = "4000000000005126"
TEST_CARDS = {
    CARD_APPROVED: "always approved",
    CARD_DECLINED: "always declined",
    CARD_TRANSIENT_ERROR: "transient processor error",
    CARD_DECLINES_AFTER_FIRST: "approved at sign-up, declined on every later charge",
    CARD_REFUND_DECLINED: "charges approved, refunds declined",
}


class Behaviour(enum.StrEnum):
    """How the test gateway answers for a card: the first part of its token."""

    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"
    ONCE = "once"  # approved on the first charge, declined after
    NO_REFUND = "norefund"  # charges approved, refunds declined
    UNKNOWN = "unknown"


BEHAVIOUR = {
    CARD_APPROVED: Behaviour.APPROVED,
    CARD_DECLINED: Behaviour.DECLINED,
    CARD_TRANSIENT_ERROR: Behaviour.ERROR,
    CARD_DECLINES_AFTER_FIRST: Behaviour.ONCE,
    CARD_REFUND_DECLINED: Behaviour.NO_REFUND,
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
        return self.send_many(requests)()

    def send_many(self, requests: list[ChargeRequest]) -> Answers:
        """A renewal batch in a constant number of ledger queries (one read
        and one COPY on PostgreSQL when no key was seen before). Latency is
        spent per charge, as many at a time as ``in_flight`` allows, as an
        async client of a real processor would; a call
        longer than ``GATEWAY_TIMEOUT_SECONDS`` is abandoned before the
        processor commits it: a transient error, nothing charged (a real
        gateway's adapter must make the same promise, by looking the key up
        before it answers "error"). The ledger is read when sending and
        written when the answers are collected, in the collecting thread."""
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
        on_the_wire = self._send(fresh)

        def answers() -> list[ChargeResult]:
            timed_out = {key for key, late in on_the_wire.items() if late.result()}
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
                and r.idempotency_key not in timed_out
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
            return [
                TIMED_OUT
                if key in timed_out
                else _result(known[key])
                if key in known
                else decided[key]
                for key in keys
            ]

        return Answers(list(on_the_wire.values()), answers)

    def lookup(self, idempotency_key: str) -> ChargeResult | None:
        row = GatewayCharge.objects.filter(idempotency_key=idempotency_key).first()
        return _result(row) if row is not None else None

    def refund(
        self, charge_key: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> ChargeResult:
        previous = GatewayCharge.objects.filter(idempotency_key=idempotency_key).first()
        if previous is not None:
            return _result(previous)
        original = (
            GatewayCharge.objects.filter(outcome=Outcome.APPROVED)
            .filter(Q(idempotency_key=charge_key) | Q(reference=charge_key))
            .first()
        )
        if original is None:
            return ChargeResult(Outcome.DECLINED, message="Nothing to refund for that charge.")
        given_back = GatewayCharge.objects.filter(
            message=f"Refund of {original.reference}", outcome=Outcome.APPROVED
        ).aggregate(total=Sum("amount"))["total"] or Decimal("0")
        if amount > original.amount - given_back:
            return ChargeResult(Outcome.DECLINED, message="More than is left of that charge.")
        if _behaviour(original.payment_token) == Behaviour.NO_REFUND:
            return ChargeResult(Outcome.DECLINED, message="The card issuer refused the refund.")
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

    def _send(self, requests: list[ChargeRequest]) -> dict[str, Future[bool]]:
        """Put each call on the network, in flight together: per key, a
        future that says whether it took longer than the timeout."""
        latency, timeout = self.latency_ms / 1000, settings.GATEWAY_TIMEOUT_SECONDS
        if not self.latency_ms:
            done: Future[bool] = Future()
            done.set_result(False)
            return {r.idempotency_key: done for r in requests}

        async def call() -> bool:
            await asyncio.sleep(min(latency, timeout))
            return latency > timeout

        by_client: dict[int, list[ChargeRequest]] = {}
        for request in requests:
            by_client.setdefault(request.client_id, []).append(request)
        sent: dict[str, Future[bool]] = {}
        for client_id, mine in by_client.items():
            futures = start_in_flight([call] * len(mine), client_id=client_id)
            sent.update((r.idempotency_key, f) for r, f in zip(mine, futures, strict=True))
        return sent

    def _decide(
        self, payment_method: PaymentMethod, charged_before: set[str] | None = None
    ) -> ChargeResult:
        behaviour = _behaviour(payment_method.token)
        reference = f"tg_{uuid.uuid4().hex[:20]}"
        if behaviour in (Behaviour.APPROVED, Behaviour.NO_REFUND):
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


TIMED_OUT = ChargeResult(Outcome.ERROR, message="The payment service did not answer in time.")


def _result(row: GatewayCharge) -> ChargeResult:
    return ChargeResult(Outcome(row.outcome), row.reference, row.message)


def get_gateway() -> PaymentGateway:
    gateway: PaymentGateway = import_string(settings.PAYMENT_GATEWAY)()
    return gateway
