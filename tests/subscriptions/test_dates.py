from datetime import UTC, datetime

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

from subscriptions.dates import Interval, add_months_days, interval_start

MONTH = Interval(1, 0)


def start(anchor, n, initial=MONTH, recurring=MONTH, anchor_no=1):
    return interval_start(
        anchor=anchor,
        anchor_interval_no=anchor_no,
        interval_no=n,
        initial=initial,
        recurring=recurring,
    )


def test_month_end_anchor_bills_last_day_of_short_months_and_31st_again():
    jan31 = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert [start(jan31, n).date().isoformat() for n in (2, 3, 4, 5)] == [
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
    ]


def test_leap_year_february_gets_the_29th():
    jan31 = datetime(2028, 1, 31, tzinfo=UTC)
    assert start(jan31, 2).date().isoformat() == "2028-02-29"
    assert start(jan31, 3).date().isoformat() == "2028-03-31"


def test_initial_interval_is_used_once_then_the_recurring_one():
    anchor = datetime(2026, 1, 10, tzinfo=UTC)
    trial = Interval(0, 14)
    assert start(anchor, 2, initial=trial).date().isoformat() == "2026-01-24"
    assert start(anchor, 3, initial=trial).date().isoformat() == "2026-02-24"


def test_rebased_anchor_counts_recurring_intervals_only():
    anchor = datetime(2026, 3, 15, tzinfo=UTC)
    assert start(anchor, 4, initial=Interval(0, 14), anchor_no=4) == anchor
    assert start(anchor, 5, initial=Interval(0, 14), anchor_no=4).date().isoformat() == "2026-04-15"


def test_yearly_from_29_february_falls_on_28_february():
    anchor = datetime(2028, 2, 29, tzinfo=UTC)
    year = Interval(12, 0)
    assert start(anchor, 2, year, year).date().isoformat() == "2029-02-28"
    assert start(anchor, 5, year, year).date().isoformat() == "2032-02-29"


def test_an_empty_interval_is_refused():
    with pytest.raises(ValueError):
        Interval(0, 0)


@given(
    moment=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
    ),
    months=st.integers(0, 1200),
    days=st.integers(0, 1000),
)
def test_month_and_day_arithmetic_is_relativedeltas(moment, months, days):
    """The billing-date arithmetic gives what ``relativedelta`` gives (month
    ends clamped, leap days, the days after the months)."""
    assert add_months_days(moment, months=months, days=days) == moment + relativedelta(
        months=months, days=days
    )
