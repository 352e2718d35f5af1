"""Lock timeouts for a run's session and reconnecting after a dead connection."""

import contextlib
import itertools
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, OperationalError, connection
from django.db.utils import InterfaceError

from productsync.conf import app_settings

# Errors of the connection or of locks: not the fault of one item, so the batch is retried
# whole once, not item by item.
TRANSIENT = (OperationalError, InterfaceError)
T = TypeVar("T")


def reconnect() -> None:
    """Drop a connection that may be dead so the next query opens a new one (not inside a
    caller's transaction, which must end first)."""
    if not connection.in_atomic_block:
        connection.close()
        with contextlib.suppress(DatabaseError):  # the next query reports it
            _lock_timeout_set()


def db_retry(action: Callable[[], T], within: float, fresh: Callable[[], None] = reconnect) -> T:
    """action(), done again on a fresh connection (fresh() drops the old one) while the
    database refuses it (a failover, pg_terminate_backend), 0.05 s, 0.1 s... at most 1 s
    apart, for up to within seconds; then its last DatabaseError is raised."""
    deadline = time.monotonic() + within
    for attempt in itertools.count():
        try:
            return action()
        except DatabaseError:
            fresh()
            if time.monotonic() > deadline:
                raise
        time.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError("unreachable")  # itertools.count() never ends


def _lock_timeout_set(reset: bool = False) -> None:
    """Bound how long a write waits for a lock held by someone else, for the session: one
    statement per run rather than one per transaction. On PostgreSQL also no JIT compilation:
    the drift comparison's estimated cost makes PostgreSQL compile it, which takes a second
    for a query that runs in tens of milliseconds (docs/benchmarks.md)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {int(app_settings.LOCK_TIMEOUT * 1000)}")
        elif connection.vendor == "postgresql":
            seconds = int(app_settings.LOCK_TIMEOUT)
            cursor.execute(
                "RESET lock_timeout; RESET jit"
                if reset
                else f"SET lock_timeout = '{seconds}s'; SET jit = off"
            )


@contextlib.contextmanager
def lock_timeouts():
    """The session's lock timeout while a run (or a worker's batch) writes; PostgreSQL's is
    put back afterwards, as a django-q2 worker's connection may serve other tasks next."""
    _lock_timeout_set()
    try:
        yield
    finally:
        if connection.vendor == "postgresql" and not connection.needs_rollback:
            with contextlib.suppress(DatabaseError):
                _lock_timeout_set(reset=True)
