"""Run history: a batch's outcome, its failures and the run's totals, and a run's end."""

import contextlib
import itertools
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone

from productsync.exceptions import ProductSyncError
from productsync.models import SyncBatch, SyncFailure, SyncRun
from productsync.outcomes import BatchResult
from productsync.records import one_line, printable
from productsync.services.alerts import run_ended
from productsync.services.items import items_record
from productsync.services.lease import BatchStatus, Status, _run_save_if_running
from productsync.services.locks import _reconnect
from productsync.services.upload import uploads_prune
from productsync.sql import insert_rows

UNFINISHED = (BatchStatus.PENDING, BatchStatus.RUNNING)
OnBatch = Callable[[SyncRun, BatchResult], None]
# Batch warnings (images not fetched) listed in run.notes at most; run.warnings counts all.
MAX_NOTES = 20
# Unknown keys named in one note of the run; the rest are counted.
NOTED_KEYS = 10
# Characters of an unknown key kept in run.unknown_keys and its notes.
KEY_LENGTH = 60
# Seconds a run keeps trying to record its end, on a fresh connection each time.
FINISH_WITHIN = 30


def _finish(run: SyncRun, error: str, status: str | None = None) -> None:
    if status is None:
        status = Status.FAILED if error else (Status.PARTIAL if run.failed else Status.SUCCEEDED)
    run.status = status
    run.error = one_line(error)
    run.finished_at = timezone.now()
    # A connection that died (a failover, pg_terminate_backend) is replaced and the end
    # recorded on the new one: a run the process survives is never left running.
    deadline = time.monotonic() + FINISH_WITHIN
    for attempt in itertools.count():
        try:
            run.save(update_fields=["status", "error", "finished_at"])
            run_ended(run)
            return
        except DatabaseError as exc:
            failure = exc
            _reconnect()
        if time.monotonic() > deadline:
            break
        time.sleep(min(0.05 * 2**attempt, 1.0))
    error = ProductSyncError(
        f"run {run.pk}: {run.error or status}; could not record it: {one_line(failure)}"
    )
    error.run_id = run.pk
    raise error from None


def _run_reload(run: SyncRun) -> None:
    """Take the run's counters from the database after a batch whose record was undone: the
    summary says what is recorded, never what was counted in memory."""
    with contextlib.suppress(DatabaseError):  # recording the end tries again
        fresh = SyncRun.objects.get(pk=run.pk)
        for name in (*SyncRun.COUNTERS, "notes", "bytes_read", "unknown_keys"):
            setattr(run, name, getattr(fresh, name))


def _run_note_warnings(run: SyncRun, warnings: list[str]) -> None:
    """Count warnings found after a batch committed (images not fetched) on the run."""
    if warnings:
        run.feed_digest = ""  # the next run reads the feed again, to fetch these again
        run.warnings += len(warnings)
        run.notes.extend(warnings[: max(0, MAX_NOTES - len(run.notes))])
        run.save(update_fields=["warnings", "notes"])


def _batch_record(
    run: SyncRun,
    result: BatchResult,
    bytes_read: int,
    batch: SyncBatch | None = None,
) -> SyncBatch:
    """Store the batch (a new row, or the queued one given), its failures and the run's new
    totals in one short transaction; note the unknown keys the run had not met before."""
    new_keys = {printable(key)[:KEY_LENGTH] for key in result.unknown_keys}
    new_keys -= set(run.unknown_keys)
    with transaction.atomic(savepoint=False):
        values = {
            "first_position": result.first_position,
            "last_position": result.last_position,
            "status": result.status,
            **{name: getattr(result, name) for name in SyncBatch.COUNTERS},
            "duration": result.duration,
            "error": result.error,
            "finished_at": timezone.now(),
            "payload": None,
        }
        if batch is None:
            # Through the driver: the ORM's save() costs more (docs/benchmarks.md).
            batch = SyncBatch(run=run, number=result.number, **values)
            [batch.pk] = insert_rows(
                SyncBatch,
                ["run_id", "number", *values],
                [(run.pk, result.number, *values.values())],
                returning="id",
            )
            batch._state.adding = False
        else:
            for name, value in values.items():
                setattr(batch, name, value)
            batch.save()
        SyncFailure.objects.bulk_create(
            SyncFailure(
                run=run,
                batch=batch,
                position=f.position,
                upc=f.upc[:255],
                field=f.field[:255],
                message=f.message,
                raw_payload=f.raw_payload,
                duplicate_of=f.duplicate_of,
            )
            for f in result.failures
        )
        items_record(run, result)
        run.items += result.items
        run.created += result.created
        run.updated += result.updated
        run.unchanged += result.unchanged
        run.repaired += result.repaired
        run.failed += result.failed
        run.hidden += result.hidden
        run.batches += 1
        run.failed_batches += bool(result.failures)
        run.warnings += result.warnings
        if new_keys:
            names = sorted(new_keys)
            run.unknown_keys = [*run.unknown_keys, *names]
            more = f" and {len(names) - NOTED_KEYS} more" if len(names) > NOTED_KEYS else ""
            run.notes.append(f"unknown keys ignored: {', '.join(names[:NOTED_KEYS])}{more}")
        run.notes.extend(result.notes[: max(0, MAX_NOTES - len(run.notes))])
        run.bytes_read = bytes_read
        run.heartbeat_at = timezone.now()
        fields = [*SyncRun.COUNTERS, "notes", "unknown_keys", "bytes_read", "heartbeat_at"]
        fields.append("item_rows")
        _run_save_if_running(run, fields)
    return batch


def sync_run_prune(keep_days: int) -> int:
    """Delete finished runs (with their batches, failures, items and the uploaded files no
    other run reads) that started more than keep_days days ago; return how many runs were
    deleted. Running runs are kept."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    old = SyncRun.objects.filter(started_at__lt=cutoff).exclude(status=Status.RUNNING)
    return uploads_prune(old)


def _run_complete_if_done(run: SyncRun) -> bool:
    """Set a queue run's final status once it is planned and no batch is left to write.
    The caller holds the run's row lock, so exactly one reporter completes it."""
    if run.status != Status.RUNNING or run.planned_batches is None:
        return False
    if run.batch_set.filter(status__in=UNFINISHED).exists():
        return False
    _finish(run, run.error)
    return True
