"""Advisory locks (PostgreSQL): one process at a time per key, released at
the end or when the holder's connection dies (a killed worker)."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection


class LockSpace(enum.IntEnum):
    """The first half of a lock's key: what is locked."""

    WEBHOOK_ENDPOINT = 7301
    RENEWAL_BATCH = 7302


@contextmanager
def held(space: LockSpace, key: int) -> Iterator[bool]:
    """Whether this process holds ``(space, key)`` now (``pg_try_advisory_lock``:
    never waits). Elsewhere than PostgreSQL there is one worker: always True."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [int(space), key])
        got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [int(space), key])
            except DatabaseError:
                pass  # the connection is gone, and the lock with it
