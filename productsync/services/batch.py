"""One batch: validate, write in bulk, item by item when the database rejects the bulk
write, once more after a lock or connection error."""

import logging
import time
from typing import Any

from django.db import DatabaseError, connection, transaction

from productsync.exceptions import RecordError
from productsync.models import SyncBatch, SyncRun
from productsync.records import (
    KNOWN_KEYS,
    BatchResult,
    FeedItem,
    ItemFailure,
    ValidItem,
    one_line,
    payload_dump,
    printable,
    record_fingerprint,
    record_parse,
)
from productsync.services.history import _batch_record
from productsync.services.locks import TRANSIENT, _reconnect
from productsync.writer import BatchWriter

logger = logging.getLogger(__name__)


def _upc_of(payload: Any) -> str:
    upc = payload.get("upc") if isinstance(payload, dict) else None
    return printable(upc if isinstance(upc, str) else str(upc))[:255] if upc is not None else ""


def _batch_validate(chunk: list[FeedItem], result: BatchResult) -> list[ValidItem]:
    valid = []
    for item in chunk:
        try:
            record = record_parse(item.payload)
        except RecordError as exc:
            result.failures.append(
                ItemFailure(
                    item.position,
                    _upc_of(item.payload),
                    str(exc),
                    payload_dump(item.payload),
                    exc.field,
                )
            )
            continue
        unknown = item.payload.keys() - KNOWN_KEYS
        if unknown:
            result.unknown_keys.update(unknown)
            result.warnings += 1
        valid.append(ValidItem(item.position, record, record_fingerprint(record), item.payload))
    return valid


def _write(writer: BatchWriter, items, result: BatchResult, rollback, savepoint=False) -> None:
    """Write items in the caller's transaction; in a savepoint when asked, and always when
    it is to be rolled back (a dry run's)."""
    part = BatchResult(result.number, items[0].position, items[-1].position, len(items))
    with transaction.atomic(savepoint=savepoint or rollback):
        writer.write(items, part)
        if rollback:
            transaction.set_rollback(True)
    result.merge(part)


class _WriteRejected(Exception):
    """The database rejected a batch's bulk write; its transaction must be undone."""

    def __init__(self, error: DatabaseError) -> None:
        self.error = error


def _batch_transaction(
    run: SyncRun, writer: BatchWriter, number: int, chunk: list[FeedItem], record=None
) -> tuple[BatchResult, Any]:
    """Process a batch in one transaction, and record(result) in it. The bulk write goes
    first, with no savepoint; if the database rejects it, the transaction is undone and the
    batch written again item by item, each in a savepoint, so only the offending items fail.
    Lock and connection errors propagate. Return the result and what record returned."""
    rejected = None
    while True:
        try:
            with transaction.atomic():
                result = _batch_process(run, writer, number, chunk, rejected)
                return result, record(result) if record else None
        except _WriteRejected as exc:
            writer.forget()
            rejected = exc.error


def _batch_commit(
    run: SyncRun, writer: BatchWriter, number: int, chunk: list[FeedItem], bytes_read: int
) -> tuple[BatchResult, SyncBatch]:
    """Write a batch and record it (with the feed's bytes_read after it) in one transaction,
    so a crash leaves both or neither. When that transaction fails on a lock or the
    connection, the batch is tried once more, then recorded with every item failed."""
    for _attempt in range(2):
        try:
            return _batch_transaction(
                run, writer, number, chunk, lambda result: _batch_record(run, result, bytes_read)
            )
        except TRANSIENT as exc:
            error = exc
            logger.warning("run %s batch %s: %s; rolled back", run.pk, number, one_line(exc))
            writer.forget()
            _reconnect()
            run.refresh_from_db()  # its totals and noted keys as committed
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    _batch_failed(result, _batch_validate(chunk, result), error)
    return result, _batch_record(run, result, bytes_read)


def _batch_failed(result: BatchResult, valid: list[ValidItem], exc: Exception) -> None:
    """Record every valid item of a batch that could not be written as failed."""
    result.error = f"the batch could not be written: {one_line(exc)}"
    result.failures.extend(_db_failure(item, exc) for item in valid)


def _batch_process(
    run: SyncRun, writer: BatchWriter, number: int, chunk: list[FeedItem], rejected=None
) -> BatchResult:
    """Validate and write a batch in the caller's transaction (rolled back for a dry run): in
    bulk, or item by item when the database rejected the bulk write (rejected: its error)."""
    dry_run = run.dry_run
    started = time.perf_counter()
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    valid = _batch_validate(chunk, result)
    if valid and rejected is None:
        try:
            _write(writer, valid, result, dry_run)
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


def _write_each(writer: BatchWriter, valid: list[ValidItem], result: BatchResult, rollback) -> None:
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


def _records_of(chunk: list[FeedItem]):
    for item in chunk:
        try:
            yield record_parse(item.payload)
        except RecordError:
            continue
