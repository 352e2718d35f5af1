"""One batch: validate, write in bulk, item by item when the database rejects the bulk
write, once more after a lock or connection error."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction

from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import BatchResult, FeedItem, ItemFailure, ValidItem
from productsync.records import one_line
from productsync.services.locks import TRANSIENT, reconnect
from productsync.services.mode import RunMode

logger = logging.getLogger(__name__)
# Bulk redos of a batch that a unique constraint rejected, before it is written item by item.
RACE_REDOS = 3
# Tries of a batch whose transaction failed on a lock or the connection; a deadlock or a
# serialization failure (another transaction's fault as much as ours) gets more.
TRIES, DEADLOCK_TRIES = 2, 5
DEADLOCK = ("40P01", "40001")


@dataclass
class BatchContext:
    """What writing a run's batches needs: the run, its mode, its writer, and how a batch's
    result is recorded in the batch's own transaction (a new row, or a queued batch's)."""

    run: SyncRun
    mode: RunMode
    writer: Any
    record: Callable[[BatchResult], SyncBatch]


def _write(writer, items, result: BatchResult, rollback, savepoint=False, looked_up=None) -> None:
    """Write items in the caller's transaction; in a savepoint when asked, and always when
    it is to be rolled back (a dry run's). looked_up: what the unchanged check read."""
    part = BatchResult(result.number, items[0].position, items[-1].position, len(items))
    with transaction.atomic(savepoint=savepoint or rollback):
        writer.write(items, part, looked_up=looked_up)
        if rollback:
            transaction.set_rollback(True)
    result.merge(part)


class _WriteRejected(Exception):
    """The database rejected a batch's bulk write; its transaction must be undone."""

    def __init__(self, error: DatabaseError) -> None:
        self.error = error


def batch_transaction(
    context: BatchContext, number: int, chunk: list[FeedItem]
) -> tuple[BatchResult, SyncBatch]:
    """Process a batch in one transaction, and record its result in it. The bulk write goes
    first, with no savepoint; if the database rejects it, the transaction is undone and the
    batch written again item by item, each in a savepoint, so only the offending items fail.
    Lock and connection errors propagate. Return the result and its record."""
    rejected, raced = None, 0
    while True:
        try:
            with transaction.atomic():
                result = _batch_process(context, number, chunk, rejected)
                return result, context.record(result)
        except _WriteRejected as exc:
            context.writer.forget()
            if isinstance(exc.error, IntegrityError) and raced < RACE_REDOS:
                # Most likely another run wrote the same products or categories between our
                # reads and writes: redo the batch in bulk on what it committed.
                raced += 1
                continue
            rejected = exc.error


def batch_commit(
    context: BatchContext, number: int, chunk: list[FeedItem]
) -> tuple[BatchResult, SyncBatch]:
    """Write a batch and record it in one transaction, so a crash leaves both or neither.
    When that transaction fails on a lock or the connection, the batch is tried once more,
    then recorded with every item failed."""
    run, attempt, error = context.run, 0, None
    while attempt < TRIES or (attempt < DEADLOCK_TRIES and _deadlock(error)):
        attempt += 1
        try:
            return batch_transaction(context, number, chunk)
        except TRANSIENT as exc:
            error = exc
            logger.warning("run %s batch %s: %s; rolled back", run.pk, number, one_line(exc))
            context.writer.forget()
            reconnect()
            run.refresh_from_db()  # its totals and noted keys as committed
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    _batch_failed(result, context.mode.validate(chunk, result), error)
    return result, context.record(result)


def _deadlock(error: Exception | None) -> bool:
    return getattr(getattr(error, "__cause__", None), "sqlstate", None) in DEADLOCK


def _batch_failed(result: BatchResult, valid: list[ValidItem], exc: Exception) -> None:
    """Record every valid item of a batch that could not be written as failed."""
    result.error = f"the batch could not be written: {one_line(exc)}"
    result.failures.extend(_db_failure(item, exc) for item in valid)


def _batch_process(
    context: BatchContext, number: int, chunk: list[FeedItem], rejected=None
) -> BatchResult:
    """Validate and write a batch in the caller's transaction (rolled back for a dry run): in
    bulk, or item by item when the database rejected the bulk write (rejected: its error)."""
    writer, dry_run = context.writer, context.run.dry_run
    started = time.perf_counter()
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    valid, looked_up = context.mode.items(writer, chunk, result, dry_run)
    if valid and rejected is None:
        try:
            _write(writer, valid, result, dry_run, looked_up=looked_up)
        except TRANSIENT:
            raise
        except DatabaseError as exc:
            raise _WriteRejected(exc) from exc
    elif valid:
        result.error = f"the database rejected the batch, retried item by item: {rejected}"
        _write_each(writer, valid, result, dry_run)
    if dry_run:
        writer.forget()
    result.duration = time.perf_counter() - started
    return result


def _write_each(writer, valid: list[ValidItem], result: BatchResult, rollback) -> None:
    """Write each item in its own savepoint so only the offending ones fail."""
    with transaction.atomic(savepoint=rollback):
        for item in valid:
            try:
                _write(writer, [item], result, rollback=False, savepoint=True)
            except DatabaseError as exc:
                writer.forget()
                if connection.needs_rollback:
                    raise  # the connection is gone, not the item at fault
                result.failures.append(_db_failure(item, exc))
        if rollback:
            transaction.set_rollback(True)


def _db_failure(item: ValidItem, exc: Exception) -> ItemFailure:
    message = one_line(exc) or type(exc).__name__
    return ItemFailure(
        item.position, item.record.upc, f"the database rejected the item: {message}", item.raw()
    )
