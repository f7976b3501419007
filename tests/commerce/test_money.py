from decimal import Decimal

import pytest

from commerce.money import Money, quantize


def test_rounds_half_up_to_the_minor_unit():
    assert quantize(Decimal("0.005"), "EUR") == Decimal("0.01")
    assert quantize(Decimal("2.345"), "USD") == Decimal("2.35")
    assert quantize(Decimal("100.5"), "JPY") == Decimal("101")
    assert quantize(Decimal("1.0005"), "KWD") == Decimal("1.001")


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(Decimal("1"), "EUR") + Money(Decimal("1"), "USD")
    assert str(Money(Decimal("1.5"), "EUR") + Money(Decimal("2"), "EUR")) == "3.50 EUR"
