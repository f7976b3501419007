"""History entries as staff read them (docs/back-office.md): a label per
event (the code stays available on hover), and each changed value formatted —
statuses by their names, dates with the zone, items by product name, amounts
with the currency — instead of the stored snapshot (``Subscription.snapshot``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils import dateformat
from django.utils.dateparse import parse_datetime

from commerce.models import DateFormat, Product

from .models import HistoryEntry, ItemStatus, RenewalType, SubscriptionStatus

LINE = re.compile(r"^P(?P<product>\d+) x (?P<quantity>\d+) @ (?P<price>[-\d.]+)$")
LABELS = {
    "status": "Status",
    "renewal_type": "Renewal",
    "next_billing_date": "Next billing date",
    "last_interval_no": "Billing interval",
}
NAMES = {
    "status": dict(SubscriptionStatus.choices),
    "renewal_type": dict(RenewalType.choices),
}


@dataclass(frozen=True)
class Change:
    label: str
    before: str | None
    after: str


@dataclass(frozen=True)
class Shown:
    entry: HistoryEntry
    label: str
    changes: list[Change]


def _date(value: Any, day: str) -> str:
    """In the client's date format (``day``, Client.date_format), with the zone."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        return str(value)
    return f"{dateformat.format(moment.astimezone(UTC), f'{day} H:i')} UTC"


def _line(value: Any, products: dict[int, str], currency: str) -> str:
    found = LINE.match(str(value or ""))
    if found is None:
        return str(value)
    name = products.get(int(found["product"]), f"product {found['product']}")
    return f"{name} × {found['quantity']} at {found['price']} {currency}"


def _value(key: str, value: Any, day: str) -> str | None:
    if value is None:
        return None
    if key in NAMES:
        return str(NAMES[key].get(value, value))
    if key == "next_billing_date":
        return _date(value, day)
    return str(value)


def changes(
    entry: HistoryEntry, products: dict[int, str], currency: str, day: str = DateFormat.ISO
) -> list[Change]:
    out: list[Change] = []
    items = dict(ItemStatus.choices)
    for key, before, after in entry.changes():
        if key in ("items", "lines") and isinstance(after, dict):
            old = before if isinstance(before, dict) else {}
            for no in sorted(after, key=lambda n: int(n) if str(n).isdigit() else 0):
                if old.get(no) == after[no]:
                    continue
                if key == "items":
                    was = items.get(old[no], old[no]) if no in old else None
                    out.append(Change(f"Item {no}", was, str(items.get(after[no], after[no]))))
                else:
                    was = _line(old[no], products, currency) if no in old else None
                    now = _line(after[no], products, currency)
                    out.append(Change(f"Item {no} bills", was, now))
            continue
        shown = _value(key, after, day)
        out.append(Change(LABELS.get(key, key), _value(key, before, day), shown or "—"))
    return out


def shown(entries: list[HistoryEntry], day: str = DateFormat.ISO) -> list[Shown]:
    """The entries with their labels and formatted changes (one query for
    the product names they mention); dates in the format ``day``."""
    ids: set[int] = set()
    for entry in entries:
        for key in ("before", "after"):
            for line in (getattr(entry, key) or {}).get("lines", {}).values():
                found = LINE.match(str(line))
                if found:
                    ids.add(int(found["product"]))
    products = dict(Product.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [
        Shown(
            entry,
            entry.get_event_code_display(),
            changes(entry, products, entry.subscription.currency, day),
        )
        for entry in entries
    ]
