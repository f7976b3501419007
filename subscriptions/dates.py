"""Billing dates from an anchor (docs/lifecycle.md, "Billing dates").

The anchor is the start of interval ``anchor_interval_no``. Every later
interval start is the anchor plus a whole number of intervals computed in one
``relativedelta`` step, never by adding one interval to the previous date:
a subscription started on 31 January bills on 28/29 February and again on
31 March.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache


@dataclass(frozen=True)
class Interval:
    months: int
    days: int

    def __post_init__(self) -> None:
        if self.months < 0 or self.days < 0 or self.months + self.days == 0:
            raise ValueError("an interval needs a positive month or day count")

    def __str__(self) -> str:
        """ "1 month", "12 months", "7 days", "1 month 15 days"."""
        parts = [f"{self.months} month{'s' * (self.months != 1)}" if self.months else ""]
        parts.append(f"{self.days} day{'s' * (self.days != 1)}" if self.days else "")
        return " ".join(p for p in parts if p)


@lru_cache(maxsize=4096)  # pure; a renewal batch asks for the same dates many times
def interval_start(
    *,
    anchor: datetime,
    anchor_interval_no: int,
    interval_no: int,
    initial: Interval,
    recurring: Interval,
) -> datetime:
    """When interval ``interval_no`` starts (= its billing date).

    Interval 1 lasts ``initial``; every later one ``recurring``. When the
    anchor is interval 1 (never re-based), the first step is the initial one.
    """
    if interval_no < anchor_interval_no:
        raise ValueError("interval precedes the anchor")
    steps = interval_no - anchor_interval_no
    initial_steps = 1 if anchor_interval_no == 1 and steps > 0 else 0
    recurring_steps = steps - initial_steps
    return add_months_days(
        anchor,
        months=initial.months * initial_steps + recurring.months * recurring_steps,
        days=initial.days * initial_steps + recurring.days * recurring_steps,
    )


def add_months_days(moment: datetime, *, months: int, days: int) -> datetime:
    """``moment + relativedelta(months=months, days=days)`` (months >= 0),
    a few times faster: the months first, the day clamped to the last day of
    the month reached (31 January + 1 month = 28/29 February), then the days.
    ``tests/subscriptions/test_dates.py`` holds the two equal."""
    years, month0 = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month0 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    moved = moment.replace(year=year, month=month, day=day)
    return moved + timedelta(days=days) if days else moved
