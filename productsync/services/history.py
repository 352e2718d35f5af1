"""Run history: a batch's outcome, its failures and the run's totals, and a run's end."""

import contextlib
from collections.abc import Callable
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from productsync.exceptions import ProductSyncError
from productsync.models import SyncBatch, SyncFailure, SyncRun
from productsync.outcomes import BatchResult
from productsync.records import one_line, printable
from productsync.services.alerts import run_ended
from productsync.services.items import items_record
from productsync.services.lease import BatchStatus, Status, run_save_if_running
from productsync.services.locks import db_retry
from productsync.services.upload import uploads_prune
from productsync.sql import insert_rows
from productsync.writer.images import ImageWarning

UNFINISHED = (BatchStatus.PENDING, BatchStatus.RUNNING)
OnBatch = Callable[[SyncRun, BatchResult], None]
# Batch warnings (images not fetched) listed in run.notes at most; run.warnings counts all.
MAX_NOTES = 20
# Images not fetched kept by name on a run (its download lists them); the rest are counted.
IMAGES_KEPT = 500
# Unknown keys named in one note of the run; the rest are counted.
NOTED_KEYS = 10
# Characters of an unknown key kept in run.unknown_keys and its notes.
KEY_LENGTH = 60
# Seconds a run keeps trying to record its end, on a fresh connection each time.
FINISH_WITHIN = 30


def run_finish(run: SyncRun, error: str, status: str | None = None) -> None:
    if status is None:
        failures = Status.COMPLETED_WITH_FAILURES if run.failed else Status.SUCCEEDED
        status = Status.FAILED if error else failures
    run.status = status
    run.error = one_line(error)
    run.finished_at = timezone.now()
    # A connection that died (a failover, pg_terminate_backend) is replaced and the end
    # recorded on the new one: a run the process survives is never left running.
    try:
        db_retry(lambda: run.save(update_fields=["status", "error", "finished_at"]), FINISH_WITHIN)
    except DatabaseError as failure:
        error = ProductSyncError(
            f"run {run.pk}: {run.error or status}; could not record it: {one_line(failure)}"
        )
        error.run_id = run.pk
        raise error from None
    run_ended(run)


# The error of a run stopped by SIGTERM (an interrupt saying so); Ctrl-C's says "interrupted".
TERMINATED = "terminated (SIGTERM)"


def run_interrupted(run: SyncRun, interrupt: KeyboardInterrupt) -> None:
    """End a run stopped by Ctrl-C or SIGTERM aborted: resumable from its first uncommitted
    batch, its lease released at once. The interrupt may have come between a transaction's
    BEGIN and Django knowing of it (in Atomic.__enter__): a statement on that connection
    would join the transaction and never be committed, so a new one records the end."""
    if not connection.in_atomic_block:
        connection.close()
    run_finish(run, str(interrupt) or "interrupted", status=Status.ABORTED)


def run_note(run: SyncRun, note: str) -> None:
    """Add a note to the run, once."""
    if note not in run.notes:
        run.notes.append(note)
        run.save(update_fields=["notes"])


def run_reload(run: SyncRun) -> None:
    """Take the run's counters from the database after a batch whose record was undone: the
    summary says what is recorded, never what was counted in memory."""
    with contextlib.suppress(DatabaseError):  # recording the end tries again
        fresh = SyncRun.objects.get(pk=run.pk)
        for name in (*SyncRun.COUNTERS, "notes", "bytes_read", "unknown_keys"):
            setattr(run, name, getattr(fresh, name))


def run_note_warnings(run: SyncRun, warnings: list[ImageWarning]) -> None:
    """Count images not fetched after a batch committed on the run, by kind, under its row
    lock (a queue run's workers note theirs side by side); run takes what is recorded, and
    forgets its feed digest: the next run reads the feed again to fetch them."""
    if not warnings:
        return
    with transaction.atomic():
        locked = SyncRun.objects.select_for_update().get(pk=run.pk)
        locked.warnings += len(warnings)
        _image_failures_count(locked.image_failures, warnings)
        room = max(0, MAX_NOTES - len(locked.notes))
        locked.notes.extend(warning.text for warning in warnings[:room])
        locked.save(update_fields=["warnings", "notes", "image_failures"])
    run.warnings, run.notes, run.feed_digest = locked.warnings, locked.notes, ""
    run.image_failures = locked.image_failures


def _image_failures_count(failures: dict, warnings: list[ImageWarning]) -> None:
    """Add the warnings to the run's image failures: a count per kind, the first IMAGES_KEPT
    named (the first few also in its notes, which the run page lists apart)."""
    counts = failures.setdefault("counts", {})
    for warning in warnings:
        counts[warning.kind] = counts.get(warning.kind, 0) + 1
    named = failures.setdefault("named", [])
    named.extend(warning.text for warning in warnings[: max(0, IMAGES_KEPT - len(named))])


def batch_record(
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
        batch = _batch_save(run, result, batch)
        _failures_store(run, batch, result)
        items_record(run, result)
        _run_totals_add(run, result, new_keys)
        run.bytes_read = bytes_read
        run.heartbeat_at = timezone.now()
        fields = [*SyncRun.COUNTERS, "notes", "unknown_keys", "bytes_read", "heartbeat_at"]
        fields.append("item_rows")
        run_save_if_running(run, fields)
    return batch


def _batch_save(run: SyncRun, result: BatchResult, batch: SyncBatch | None) -> SyncBatch:
    """The batch's row with its outcome: inserted, or the queued batch's updated."""
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
    return batch


def _failures_store(run: SyncRun, batch: SyncBatch, result: BatchResult) -> None:
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


def _run_totals_add(run: SyncRun, result: BatchResult, new_keys: set[str]) -> None:
    """Add the batch's counts, notes and newly met unknown keys to the run (in memory)."""
    for name in ("items", "created", "updated", "unchanged", "repaired", "failed", "hidden"):
        setattr(run, name, getattr(run, name) + getattr(result, name))
    run.batches += 1
    run.failed_batches += bool(result.failures)
    run.warnings += result.warnings
    if new_keys:
        names = sorted(new_keys)
        run.unknown_keys = [*run.unknown_keys, *names]
        more = f" and {len(names) - NOTED_KEYS} more" if len(names) > NOTED_KEYS else ""
        run.notes.append(f"unknown keys ignored: {', '.join(names[:NOTED_KEYS])}{more}")
    run.notes.extend(result.notes[: max(0, MAX_NOTES - len(run.notes))])


def sync_run_prune(keep_days: int) -> int:
    """Delete finished runs (with their batches, failures, items and the uploaded files no
    other run reads) that started more than keep_days days ago; return how many runs were
    deleted. Running runs are kept."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    old = SyncRun.objects.filter(started_at__lt=cutoff).exclude(status=Status.RUNNING)
    return uploads_prune(old)


def run_complete_if_done(run: SyncRun) -> bool:
    """Set a queue run's final status once it is planned and no batch is left to write.
    The caller holds the run's row lock, so exactly one reporter completes it."""
    if run.status != Status.RUNNING or run.planned_batches is None:
        return False
    if run.batch_set.filter(status__in=UNFINISHED).exists():
        return False
    run_finish(run, run.error)
    return True
