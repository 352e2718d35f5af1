"""The run loop: batches, transactions, failure isolation, run history and the lease."""

import contextlib
import itertools
import logging
import sys
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.utils import InterfaceError
from django.utils import timezone

from productsync.batching import batched
from productsync.conf import MAX_BATCH_SIZE, app_settings
from productsync.exceptions import (
    FeedError,
    LeaseLostError,
    ProductSyncError,
    RecordError,
    RunActiveError,
    SourceError,
)
from productsync.feeds import feed_open
from productsync.models import SyncBatch, SyncFailure, SyncRun
from productsync.records import (
    KNOWN_KEYS,
    BatchResult,
    FeedItem,
    ItemFailure,
    ValidItem,
    default_currency,
    payload_dump,
    printable,
    record_fingerprint,
    record_parse,
)
from productsync.writer import BatchWriter

logger = logging.getLogger(__name__)

Status = SyncRun.Status
OnBatch = Callable[[SyncRun, BatchResult], None]
# Errors of the connection or of locks: not the fault of one item, so the batch is retried
# whole once, not item by item.
TRANSIENT = (OperationalError, InterfaceError)
# Unknown keys named in one note of the run; the rest are counted.
NOTED_KEYS = 10


def _one_line(text: str) -> str:
    """Error text (from a database driver, a parser) on one storable, printable line."""
    return printable(" ".join(str(text).split()))


def sync_run_abort_stale() -> int:
    """Mark runs whose process stopped heart-beating as aborted, releasing their lease."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=app_settings.STALE_AFTER)
    return SyncRun.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Status.ABORTED,
        finished_at=now,
        error=f"no heartbeat for {app_settings.STALE_AFTER}s: the process is taken for dead",
    )


def sync_run_start(
    source: str, *, batch_size: int, dry_run: bool = False, trigger: str = SyncRun.Trigger.COMMAND
) -> SyncRun:
    """Record a new running run. A non-dry run takes the source's lease; if another run holds
    it, a skipped run is recorded and RunActiveError raised."""
    sync_run_abort_stale()
    fields = {"source": source, "batch_size": batch_size, "dry_run": dry_run, "trigger": trigger}
    try:
        with transaction.atomic():
            return SyncRun.objects.create(**fields)
    except IntegrityError:
        active = SyncRun.objects.filter(source=source, status=Status.RUNNING, dry_run=False).first()
        reason = f"run {active.pk if active else '?'} of this source is still running"
        now = timezone.now()
        skipped = SyncRun.objects.create(
            **fields, status=Status.SKIPPED, error=reason, finished_at=now
        )
        raise RunActiveError(f"Run {skipped.pk} skipped: {reason}") from None


def sync_run_execute(
    source: str | None = None,
    *,
    batch_size: int | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    trigger: str = SyncRun.Trigger.COMMAND,
    on_start: Callable[[SyncRun], None] | None = None,
    on_batch: OnBatch | None = None,
) -> SyncRun:
    """Sync a feed into the catalogue, one transaction per batch, and record the run.

    Raises SourceError when the feed cannot be opened and RunActiveError when another run of
    the source is active; both after recording the run. Any other failure ends the run
    `failed` with the reason; batches committed before it stay."""
    source = source or app_settings.SOURCE
    batch_size = batch_size or app_settings.BATCH_SIZE
    if not source:
        raise SourceError("no source given and PRODUCTSYNC['SOURCE'] is not set")
    if not 1 <= batch_size <= MAX_BATCH_SIZE or (limit is not None and limit < 0):
        raise ProductSyncError(
            f"batch size must be from 1 to {MAX_BATCH_SIZE} and limit at least 0"
        )
    try:
        run = sync_run_start(source, batch_size=batch_size, dry_run=dry_run, trigger=trigger)
    except DatabaseError as exc:
        raise ProductSyncError(
            f"the database refused to record the run: {_one_line(exc)}"
        ) from None
    try:
        with feed_open(source) as feed:
            run.total_items = feed.total_items
            if limit is not None and feed.total_items is not None:
                run.total_items = min(limit, feed.total_items)
            run.bytes_total = feed.bytes_total
            run.save(update_fields=["total_items", "bytes_total"])
            if on_start:
                on_start(run)
            items = iter(feed) if limit is None else itertools.islice(feed, min(limit, sys.maxsize))
            error = _run_batches(run, items, dry_run, on_batch, lambda: feed.bytes_read)
    except SourceError as exc:
        _finish(run, str(exc))
        raise
    except Exception as exc:
        if run.status == Status.RUNNING:
            # A bug, not bad input: end the run so its lease is released, and let it surface.
            _finish(run, f"unexpected error: {exc!r}")
        raise
    _finish(run, error)
    return run


def _run_batches(run: SyncRun, items: Iterable[FeedItem], dry_run, on_batch, bytes_read) -> str:
    """Process every batch; return the error that stopped the run early, or ''."""
    writer = BatchWriter(run.pk, run.source, default_currency())
    _set_sqlite_busy_timeout()
    unknown_keys: set[str] = set()
    try:
        for number, chunk in enumerate(batched(items, run.batch_size), start=1):
            result = _batch_commit(run, writer, number, chunk, dry_run, bytes_read, unknown_keys)
            if on_batch:
                on_batch(run, result)
    except FeedError as exc:
        if run.items == 0:
            # Nothing of it could be read: the source is unusable, not broken part-way.
            raise SourceError(f"{run.source}: {exc}") from None
        return f"feed broke at item {run.items}: {exc}"
    except KeyboardInterrupt:
        _finish(run, "interrupted", status=Status.ABORTED)
        raise
    except LeaseLostError as exc:
        _finish(run, str(exc), status=Status.ABORTED)
        raise
    except DatabaseError as exc:
        logger.warning("run %s stopped by a database error: %s", run.pk, _one_line(exc))
        _reconnect()
        return f"database error: {exc}"
    return ""


def _finish(run: SyncRun, error: str, status: str | None = None) -> None:
    if status is None:
        status = Status.FAILED if error else (Status.PARTIAL if run.failed else Status.SUCCEEDED)
    run.status = status
    run.error = _one_line(error)
    run.finished_at = timezone.now()
    try:
        run.save(update_fields=["status", "error", "finished_at"])
    except DatabaseError as exc:
        raise ProductSyncError(
            f"run {run.pk}: {run.error or status}; could not record it: {_one_line(exc)}"
        ) from None


def _reconnect() -> None:
    """Drop a connection that may be dead so the next query opens a new one (not inside a
    caller's transaction, which must end first)."""
    if not connection.in_atomic_block:
        connection.close()
        with contextlib.suppress(DatabaseError):  # the next query reports it
            _set_sqlite_busy_timeout()


def _set_sqlite_busy_timeout() -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA busy_timeout = {int(app_settings.LOCK_TIMEOUT * 1000)}")


def _lock_timeout() -> None:
    """Bound how long a write waits for a row lock held by someone else (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{int(app_settings.LOCK_TIMEOUT)}s'")


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


def _write(writer: BatchWriter, items: list[ValidItem], result: BatchResult, dry_run) -> None:
    """Write items in one transaction (a savepoint when nested), rolled back on dry runs."""
    part = BatchResult(result.number, items[0].position, items[-1].position, len(items))
    with transaction.atomic():
        _lock_timeout()
        writer.write(items, part)
        if dry_run:
            transaction.set_rollback(True)
    result.merge(part)


def _batch_commit(
    run: SyncRun, writer: BatchWriter, number: int, chunk, dry_run, bytes_read, unknown_keys: set
) -> BatchResult:
    """Write a batch and record it in one transaction, so a crash leaves both or neither.
    When that transaction fails on the connection, the batch is tried once more, then
    recorded with every item failed."""
    for _attempt in range(2):
        noted = set(unknown_keys)
        try:
            with transaction.atomic():
                result = _batch_process(writer, number, chunk, dry_run)
                _batch_record(run, result, bytes_read(), noted)
        except TRANSIENT as exc:
            error = exc
            logger.warning("run %s batch %s: %s; rolled back", run.pk, number, _one_line(exc))
            writer.forget()
            _reconnect()
            run.refresh_from_db()
            continue
        unknown_keys |= noted
        return result
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    _batch_failed(result, _batch_validate(chunk, result), error)
    with transaction.atomic():
        _batch_record(run, result, bytes_read(), unknown_keys)
    return result


def _batch_failed(result: BatchResult, valid: list[ValidItem], exc: Exception) -> None:
    """Record every valid item of a batch that could not be written as failed."""
    result.error = f"the batch could not be written: {_one_line(exc)}"
    result.failures.extend(_db_failure(item, exc) for item in valid)


def _batch_process(writer: BatchWriter, number: int, chunk: list[FeedItem], dry_run) -> BatchResult:
    started = time.perf_counter()
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    valid = _batch_validate(chunk, result)
    if valid:
        try:
            _write_retrying(writer, valid, result, dry_run)
        except DatabaseError as exc:
            if isinstance(exc, TRANSIENT):
                raise
            writer.forget()
            result.error = f"the database rejected the batch, retried item by item: {exc}"
            _write_each(writer, valid, result, dry_run)
    if dry_run:
        writer.forget()
    result.duration = time.perf_counter() - started
    return result


def _write_retrying(writer, valid, result, dry_run) -> None:
    """Write the batch; on a lock or connection error, retry it once, then record every item
    of it as failed with the reason."""
    try:
        _write(writer, valid, result, dry_run)
    except TRANSIENT as exc:
        writer.forget()
        if connection.needs_rollback:
            raise  # the connection is gone: the whole batch transaction is tried again
        logger.warning("batch %s: %s; retrying once", result.number, _one_line(exc))
        try:
            _write(writer, valid, result, dry_run)
        except TRANSIENT as exc2:
            writer.forget()
            if connection.needs_rollback:
                raise
            _batch_failed(result, valid, exc2)


def _write_each(writer: BatchWriter, valid: list[ValidItem], result: BatchResult, dry_run) -> None:
    """Retry each item in its own savepoint so only the offending ones fail."""
    with transaction.atomic():
        for item in valid:
            try:
                _write(writer, [item], result, dry_run=False)
            except DatabaseError as exc:
                writer.forget()
                if connection.needs_rollback:
                    raise  # the connection is gone, not the item at fault
                result.failures.append(_db_failure(item, exc))
        if dry_run:
            transaction.set_rollback(True)


def _db_failure(item: ValidItem, exc: Exception) -> ItemFailure:
    message = _one_line(exc) or type(exc).__name__
    return ItemFailure(
        item.position, item.record.upc, f"the database rejected the item: {message}", item.raw()
    )


def _batch_record(run: SyncRun, result: BatchResult, bytes_read: int, unknown_keys: set) -> None:
    """Store the batch, its failures and the run's new totals in one short transaction, if
    the run still holds its lease (else raise LeaseLostError, undoing the batch)."""
    new_keys = result.unknown_keys - unknown_keys
    unknown_keys |= new_keys
    with transaction.atomic():
        status = (
            SyncRun.objects.select_for_update()
            .filter(pk=run.pk)
            .values_list("status", flat=True)
            .first()
        )
        if status != Status.RUNNING:
            raise LeaseLostError(
                f"run {run.pk} was marked {status} by another process (taken for dead): "
                f"it stopped, batch {result.number} undone"
            )
        batch = SyncBatch.objects.create(
            run=run,
            number=result.number,
            first_position=result.first_position,
            last_position=result.last_position,
            status=result.status,
            items=result.items,
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
            failed=result.failed,
            duration=result.duration,
            error=result.error,
        )
        SyncFailure.objects.bulk_create(
            SyncFailure(
                run=run,
                batch=batch,
                position=f.position,
                upc=f.upc[:255],
                field=f.field[:255],
                message=f.message,
                raw_payload=f.raw_payload,
            )
            for f in result.failures
        )
        run.items += result.items
        run.created += result.created
        run.updated += result.updated
        run.unchanged += result.unchanged
        run.failed += result.failed
        run.batches += 1
        run.failed_batches += bool(result.failures)
        run.warnings += result.warnings
        if new_keys:
            names = sorted(printable(key)[:60] for key in new_keys)
            more = f" and {len(names) - NOTED_KEYS} more" if len(names) > NOTED_KEYS else ""
            run.notes.append(f"unknown keys ignored: {', '.join(names[:NOTED_KEYS])}{more}")
        run.bytes_read = bytes_read
        run.heartbeat_at = timezone.now()
        run.save()
