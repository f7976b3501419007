from decimal import Decimal

import pytest

from commerce.gateway import (
    CARD_APPROVED,
    CARD_DECLINED,
    CARD_DECLINES_AFTER_FIRST,
    CARD_TRANSIENT_ERROR,
    ChargeRequest,
    Outcome,
    TestGateway,
    get_gateway,
    token_for_test_card,
)
from commerce.models import GatewayCharge
from customers.models import PaymentMethod
from tests.factories import CustomerFactory


def card(number):
    return PaymentMethod.objects.create(
        customer=CustomerFactory(),
        kind="card",
        token=token_for_test_card(number),
        expiry_month=1,
        expiry_year=2099,
    )


@pytest.mark.parametrize(
    "number, outcome",
    [
        (CARD_APPROVED, Outcome.APPROVED),
        (CARD_DECLINED, Outcome.DECLINED),
        (CARD_TRANSIENT_ERROR, Outcome.ERROR),
        ("5555555555554444", Outcome.DECLINED),
    ],
)
def test_test_cards_answer_by_number(db, number, outcome):
    assert TestGateway().charge(Decimal("5"), "EUR", card(number), "k1").outcome == outcome


def test_0341_is_approved_once_then_declined(db):
    method = card(CARD_DECLINES_AFTER_FIRST)
    gateway = TestGateway()
    assert gateway.charge(Decimal("5"), "EUR", method, "a").outcome == Outcome.APPROVED
    assert gateway.charge(Decimal("5"), "EUR", method, "b").outcome == Outcome.DECLINED
    other = card(CARD_DECLINES_AFTER_FIRST)
    assert gateway.charge(Decimal("5"), "EUR", other, "c").outcome == Outcome.APPROVED


def test_same_idempotency_key_charges_once_and_replays_the_answer(db):
    method = card(CARD_APPROVED)
    first = TestGateway().charge(Decimal("5"), "EUR", method, "same")
    second = TestGateway().charge(Decimal("5"), "EUR", method, "same")
    assert first == second
    assert GatewayCharge.objects.count() == 1


def test_transient_errors_leave_no_ledger_row(db):
    TestGateway().charge(Decimal("5"), "EUR", card(CARD_TRANSIENT_ERROR), "t")
    assert not GatewayCharge.objects.exists()


def test_invoice_methods_are_never_charged(db):
    method = PaymentMethod.objects.create(customer=CustomerFactory(), kind="invoice")
    assert TestGateway().charge(Decimal("5"), "EUR", method, "i").outcome == Outcome.DECLINED
    assert not GatewayCharge.objects.exists()


def test_latency_setting_is_read_from_settings(settings):
    settings.TEST_GATEWAY_LATENCY_MS = 100
    assert TestGateway().latency_ms == 100
    assert isinstance(get_gateway(), TestGateway)


@pytest.mark.django_db
def test_a_batch_racing_another_for_the_same_key_returns_the_winners_answer(monkeypatch):
    from commerce.gateway import ChargeRequest

    method = card(CARD_APPROVED)

    def another_batch_wins_while_we_wait(self, requests):
        from concurrent.futures import Future

        GatewayCharge.objects.create(
            idempotency_key="race-1",
            payment_token=method.token,
            payment_method_ref=str(method.pk),
            amount=Decimal("5.00"),
            currency="EUR",
            outcome=Outcome.APPROVED,
            reference="tg_winner",
        )
        on_time: Future[bool] = Future()
        on_time.set_result(False)  # none timed out
        return {r.idempotency_key: on_time for r in requests}

    monkeypatch.setattr(TestGateway, "_send", another_batch_wins_while_we_wait)
    requests = [
        ChargeRequest(Decimal("5.00"), "EUR", method, "race-1"),
        ChargeRequest(Decimal("7.00"), "EUR", method, "race-2"),
    ]
    first, second = TestGateway().charge_many(requests)
    assert (first.outcome, first.reference) == (Outcome.APPROVED, "tg_winner")
    assert second.approved
    assert GatewayCharge.objects.filter(idempotency_key__startswith="race-").count() == 2


# --- calls in flight ------------------------------------------------------------------


@pytest.fixture
def fresh_pool(monkeypatch):
    from commerce import gateway

    monkeypatch.setattr(gateway, "_pool", None)  # a new event loop, with these settings
    return gateway


def _counting_calls(n, record):
    import asyncio

    async def call():  # on the one event loop: no lock needed
        record["now"] += 1
        record["most"] = max(record["most"], record["now"])
        await asyncio.sleep(0.02)
        record["now"] -= 1
        return True

    return [call] * n


def test_many_calls_are_in_flight_at_once_up_to_the_clients_bound(fresh_pool, settings):
    settings.GATEWAY_MAX_IN_FLIGHT, settings.GATEWAY_MAX_IN_FLIGHT_PER_CLIENT = 64, 8
    record = {"now": 0, "most": 0}
    assert fresh_pool.in_flight(_counting_calls(40, record), client_id=1) == [True] * 40
    assert record["most"] == 8  # reached, never passed


def test_two_clients_share_the_process_bound(fresh_pool, settings):
    import threading

    settings.GATEWAY_MAX_IN_FLIGHT, settings.GATEWAY_MAX_IN_FLIGHT_PER_CLIENT = 12, 8
    record = {"now": 0, "most": 0}
    threads = [
        threading.Thread(
            target=fresh_pool.in_flight,
            args=(_counting_calls(30, record),),
            kwargs={"client_id": c},
        )
        for c in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 8 < record["most"] <= 12  # both clients at once, never past the process's bound


def test_a_call_past_the_timeout_is_a_transient_error_that_charged_nothing(
    db, fresh_pool, settings
):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.05
    method = card(CARD_APPROVED)
    request = ChargeRequest(Decimal("5.00"), "EUR", method, "slow-1", client_id=7)
    (late,) = TestGateway(latency_ms=300).charge_many([request])
    assert late.outcome == Outcome.ERROR and "in time" in late.message
    assert not GatewayCharge.objects.filter(idempotency_key="slow-1").exists()
    (again,) = TestGateway(latency_ms=10).charge_many([request])
    assert again.approved
    assert GatewayCharge.objects.filter(idempotency_key="slow-1").count() == 1
