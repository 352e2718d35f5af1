"""One batch: validate, write in bulk, item by item when the database rejects the bulk
write, once more after a lock or connection error."""

import logging
import time
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction

from productsync.exceptions import RecordError
from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import BatchResult, FeedItem, ItemFailure, ValidItem
from productsync.partial import KNOWN_KEYS as PARTIAL_KEYS
from productsync.partial import PartialItem, partial_parse, stock_item
from productsync.records import (
    KNOWN_KEYS,
    Unparsed,
    default_currency,
    one_line,
    payload_dump,
    printable,
    raw_fingerprint,
    record_fingerprint,
    record_parse,
)
from productsync.services.history import batch_record
from productsync.services.locks import TRANSIENT, reconnect
from productsync.writer import BatchWriter, PartialWriter, html_policy, items_lock, unchanged_skip

logger = logging.getLogger(__name__)
# Bulk redos of a batch that a unique constraint rejected, before it is written item by item.
RACE_REDOS = 3
# Tries of a batch whose transaction failed on a lock or the connection; a deadlock or a
# serialization failure (another transaction's fault as much as ours) gets more.
TRIES, DEADLOCK_TRIES = 2, 5
DEADLOCK = ("40P01", "40001")


def upc_of(payload: Any) -> str:
    if isinstance(payload, Unparsed):  # a mapped item that failed names its upc
        return printable(payload.upc)[:255]
    upc = payload.get("upc") if isinstance(payload, dict) else None
    return printable(upc if isinstance(upc, str) else str(upc))[:255] if upc is not None else ""


def run_writer(run: SyncRun) -> "BatchWriter | PartialWriter":
    """The writer of a run's batches: a partial run's changes only what its items give."""
    if run.partial:
        return PartialWriter()
    return BatchWriter(run.pk, run.source, default_currency())


def _fingerprints(chunk: list[FeedItem], currency: str) -> dict[int, str]:
    """By position, the raw fingerprint of each item that is an object, as read, with what
    else decides its writes: the default currency and the HTML sanitising in force."""
    context = f"{currency}\n{html_policy()}"
    return {
        item.position: raw_fingerprint(item.payload, context, item.raw)
        for item in chunk
        if isinstance(item.payload, dict)
    }


def _unknown_keys(payload: dict, result: BatchResult, known=KNOWN_KEYS) -> None:
    unknown = payload.keys() - known
    if unknown:
        result.unknown_keys.update(unknown)
        result.warnings += 1


def _invalid(item: FeedItem, exc: RecordError) -> ItemFailure:
    """The failure of an item that did not validate, with its raw payload."""
    return ItemFailure(
        item.position, upc_of(item.payload), str(exc), payload_dump(item.payload), exc.field
    )


def _batch_validate(
    chunk: list[FeedItem], result: BatchResult, fingerprints: dict | None = None
) -> list[ValidItem]:
    if fingerprints is None:
        fingerprints = _fingerprints(chunk, default_currency())
    valid = []
    policy = html_policy()  # in the fingerprint: a product stored unsanitised is written again
    for item in chunk:
        try:
            record = record_parse(item.payload)
        except RecordError as exc:
            result.failures.append(_invalid(item, exc))
            continue
        _unknown_keys(item.payload, result)
        valid.append(
            ValidItem(
                item.position,
                record,
                record_fingerprint(record, policy),
                item.payload,
                fingerprints[item.position],
            )
        )
    return valid


def _partial_validate(chunk: list[FeedItem], result: BatchResult) -> list[PartialItem]:
    valid = []
    for item in chunk:
        lean = stock_item(item.position, item.payload)  # a plain stock row: no pydantic
        if lean is not None:
            valid.append(lean)
            continue
        try:
            record = partial_parse(item.payload)
        except RecordError as exc:
            result.failures.append(_invalid(item, exc))
            continue
        _unknown_keys(item.payload, result, PARTIAL_KEYS)
        valid.append(PartialItem(item.position, record, item.payload))
    return valid


def _batch_items(writer, chunk: list[FeedItem], result: BatchResult, dry_run) -> tuple[list, Any]:
    """The items of a batch to write, validated, and what was looked up meanwhile. Items the
    last sync wrote as they are now are counted unchanged first, never validated."""
    if isinstance(writer, PartialWriter):
        return _partial_validate(chunk, result), None
    fingerprints = _fingerprints(chunk, writer.default_currency)
    if writer.outcomes:
        # A dry run says what would happen to every item: each goes through the writer,
        # which records its outcome (and finds duplicates across batches).
        valid = _batch_validate(chunk, result, fingerprints)
        items_lock(valid)
        return valid, None
    rest, looked_up = unchanged_skip(
        writer.run_id, writer.source, chunk, fingerprints, result, stamp=not dry_run
    )
    if len(rest) < len(chunk):
        positions = {item.position for item in rest}
        for item in chunk:
            if item.position not in positions:
                _unknown_keys(item.payload, result)
    valid = _batch_validate(rest, result, fingerprints)
    # Another run writing the same UPCs or SKUs now waits for this batch's commit (and this
    # one for its), so the writer's checks read what is committed and hold until the write;
    # what unchanged_skip read before the lock may be stale, so the writer reads it again.
    if items_lock(valid):
        looked_up = None
    return valid, looked_up


def _write(
    writer: BatchWriter, items, result: BatchResult, rollback, savepoint=False, looked_up=None
) -> None:
    """Write items in the caller's transaction; in a savepoint when asked, and always when
    it is to be rolled back (a dry run's). looked_up: what unchanged_skip read."""
    part = BatchResult(result.number, items[0].position, items[-1].position, len(items))
    with transaction.atomic(savepoint=savepoint or rollback):
        if looked_up is None:
            writer.write(items, part)
        else:
            writer.write(items, part, looked_up)
        if rollback:
            transaction.set_rollback(True)
    result.merge(part)


class _WriteRejected(Exception):
    """The database rejected a batch's bulk write; its transaction must be undone."""

    def __init__(self, error: DatabaseError) -> None:
        self.error = error


def batch_transaction(
    run: SyncRun, writer: BatchWriter, number: int, chunk: list[FeedItem], record=None
) -> tuple[BatchResult, Any]:
    """Process a batch in one transaction, and record(result) in it. The bulk write goes
    first, with no savepoint; if the database rejects it, the transaction is undone and the
    batch written again item by item, each in a savepoint, so only the offending items fail.
    Lock and connection errors propagate. Return the result and what record returned."""
    rejected, raced = None, 0
    while True:
        try:
            with transaction.atomic():
                result = _batch_process(run, writer, number, chunk, rejected)
                return result, record(result) if record else None
        except _WriteRejected as exc:
            writer.forget()
            if isinstance(exc.error, IntegrityError) and raced < RACE_REDOS:
                # Most likely another run wrote the same products or categories between our
                # reads and writes: redo the batch in bulk on what it committed.
                raced += 1
                continue
            rejected = exc.error


def batch_commit(
    run: SyncRun, writer: BatchWriter, number: int, chunk: list[FeedItem], bytes_read: int
) -> tuple[BatchResult, SyncBatch]:
    """Write a batch and record it (with the feed's bytes_read after it) in one transaction,
    so a crash leaves both or neither. When that transaction fails on a lock or the
    connection, the batch is tried once more, then recorded with every item failed."""
    attempt, error = 0, None
    while attempt < TRIES or (attempt < DEADLOCK_TRIES and _deadlock(error)):
        attempt += 1
        try:
            return batch_transaction(
                run, writer, number, chunk, lambda result: batch_record(run, result, bytes_read)
            )
        except TRANSIENT as exc:
            error = exc
            logger.warning("run %s batch %s: %s; rolled back", run.pk, number, one_line(exc))
            writer.forget()
            reconnect()
            run.refresh_from_db()  # its totals and noted keys as committed
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    validate = _partial_validate if run.partial else _batch_validate
    _batch_failed(result, validate(chunk, result), error)
    return result, batch_record(run, result, bytes_read)


def _deadlock(error: Exception | None) -> bool:
    return getattr(getattr(error, "__cause__", None), "sqlstate", None) in DEADLOCK


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
    valid, looked_up = _batch_items(writer, chunk, result, dry_run)
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


def records_of(chunk: list[FeedItem]):
    for item in chunk:
        try:
            yield record_parse(item.payload)
        except RecordError:
            continue
