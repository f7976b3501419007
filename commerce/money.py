"""Money is a Decimal amount with its currency beside it.

Amounts are rounded half-up to the currency's minor unit, never with floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units for the currencies that differ from the usual two.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3}


def minor_unit(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (0.005 EUR -> 0.01 EUR)."""
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def split_vat(gross: Decimal, currency: str, vat_rate: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(gross, net, VAT) of a price that includes VAT at ``vat_rate`` percent:
    stored prices are what the customer pays, and each client has one VAT
    rate (docs/api.md). Net is rounded half-up; VAT is the rest."""
    gross = quantize(gross, currency)
    net = quantize(gross / (1 + vat_rate / 100), currency)
    return gross, net, gross - net


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")
        if len(self.currency) != 3:
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __str__(self) -> str:
        return f"{quantize(self.amount, self.currency)} {self.currency}"
