"""Test clocks of sandbox clients (issue 10).

A sandbox client's time is real time plus ``Client.clock_offset``. Services,
the renewal sweep, reports and portal links ask ``now_for(...)`` instead of
the wall clock, so a client admin can walk a subscription through its whole
life in minutes. Production clients (``is_sandbox=False``) always have a zero
offset (a database constraint) and so run on real time.

Advancing never goes backwards and moves in steps of at most one day: at each
step the clock is set and that client's sweep runs at that moment, so
reminders, charges, grace, hold and deactivation happen in the order and on
the days they would in real time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone

from .models import Client

STEP = timedelta(days=1)
MAX_ADVANCE = timedelta(days=3 * 366)


class ClockError(ValueError):
    """An advance that is not allowed, with a reason a person can read."""


def client_id_of(owner: Any) -> int:
    if isinstance(owner, Client):
        return owner.pk
    if isinstance(owner, int):
        return owner
    return int(owner.client_id)


def now_for(owner: Any) -> datetime:
    """Now on the clock of the client of ``owner`` (a client, its id, or any
    row with ``client_id``)."""
    if isinstance(owner, Client):
        return owner.now()
    state = getattr(owner, "_state", None)
    loaded = state.fields_cache.get("client") if state is not None else None
    if isinstance(loaded, Client):  # already read with the row: no query
        return loaded.now()
    offset = (
        Client.objects.filter(pk=client_id_of(owner), is_sandbox=True)
        .values_list("clock_offset", flat=True)
        .first()
    )
    return timezone.now() + (offset or timedelta(0))


def target_of(
    client: Client, *, days: int = 0, months: int = 0, to: datetime | None = None
) -> datetime:
    """Where an advance by ``days``/``months`` or to ``to`` ends, or why not."""
    if not client.is_sandbox:
        raise ClockError(f"{client.name} is not a sandbox client; its time is real time.")
    now = client.now()
    target = to if to is not None else now + relativedelta(days=days, months=months)
    if target <= now:
        raise ClockError(f"The clock can only move forward (it is {now:%Y-%m-%d %H:%M} UTC now).")
    if target - now > MAX_ADVANCE:
        raise ClockError("Advance at most three years at a time.")
    return target


def advance(client_id: int, target: datetime, *, sweep: Any) -> int:
    """Move the clock to ``target`` in steps of at most a day, calling
    ``sweep(client, as_of)`` after each step. Returns the steps taken. Two
    advances at once interleave safely: a step never sets the clock back."""
    steps = 0
    while True:
        with transaction.atomic():
            client = Client.objects.select_for_update().get(pk=client_id)
            now = client.now()
            if not client.is_sandbox or now >= target:
                return steps
            moment = min(now + STEP, target)
            client.clock_offset = moment - timezone.now()
            client.save(update_fields=["clock_offset"])
        sweep(client, moment)
        steps += 1
