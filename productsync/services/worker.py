"""The worker of a queue run: it claims a batch once, writes it with the same code as a
local run, and the last one to report sets the run's status."""

import logging
import uuid

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone

from productsync.conf import app_settings
from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import BatchResult, ItemFailure
from productsync.records import payload_dump
from productsync.services.batch import batch_transaction, run_writer, upc_of
from productsync.services.history import batch_record, run_complete_if_done, run_note_warnings
from productsync.services.items import items_writer_set
from productsync.services.lease import BatchStatus, Status, owner_name
from productsync.services.locks import lock_timeouts
from productsync.services.queue import batch_enqueue, item_load
from productsync.signals import batch_committed
from productsync.writer import ImageSync

logger = logging.getLogger(__name__)


class _ClaimLost(Exception):
    """Another worker took the batch over: this one's writes are undone with its record."""


def batch_report(batch_id: int, token: str, result: BatchResult) -> SyncBatch | None:
    """Record the outcome of a queued batch if token still holds its claim; complete the run
    when it was the last. Return the batch recorded, or None. In the caller's transaction if
    there is one (the batch's writes: both commit or neither), else in its own."""
    with transaction.atomic():
        run_id = SyncBatch.objects.filter(pk=batch_id).values_list("run_id", flat=True).get()
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        batch = (
            SyncBatch.objects.select_for_update()
            .filter(pk=batch_id, status=BatchStatus.RUNNING, claimed_by=token)
            .first()
        )
        if batch is None:
            return None
        batch_record(run, result, run.bytes_read, batch=batch)
        run_complete_if_done(run)
    return batch


def _batch_report_claimed(batch_id: int, token: str, result: BatchResult) -> SyncBatch:
    batch = batch_report(batch_id, token, result)
    if batch is None:
        raise _ClaimLost
    return batch


def batch_failed_result(batch: SyncBatch, reason: str) -> BatchResult:
    result = BatchResult(
        batch.number, batch.first_position, batch.last_position, batch.items, error=reason
    )
    for item in map(item_load, batch.payload or []):
        result.failures.append(
            ItemFailure(item.position, upc_of(item.payload), reason, payload_dump(item.payload))
        )
    return result


def batch_give_up(batch: SyncBatch, token: str, reason: str) -> None:
    reason = f"the batch failed {batch.attempts} times, the last because {reason}"
    if batch_report(batch.pk, token, batch_failed_result(batch, reason)):
        logger.error("run %s batch %s: %s", batch.run_id, batch.number, reason)


def sync_batch_execute(batch_id: int) -> str:
    """Write one batch of a queue run (the django-q2 task). Safe to deliver twice: the batch
    is claimed once, and its writes are idempotent upserts if it must be written again."""
    token = f"{owner_name()}:{uuid.uuid4().hex[:8]}"
    batch = SyncBatch.objects.select_related("run").filter(pk=batch_id).first()
    if batch is None or batch.run.status != Status.RUNNING:
        return f"batch {batch_id}: nothing to do, its run is not running"
    claimed = SyncBatch.objects.filter(pk=batch_id, status=BatchStatus.PENDING).update(
        status=BatchStatus.RUNNING,
        claimed_by=token,
        heartbeat_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return f"batch {batch_id}: already claimed"
    batch.refresh_from_db()
    run = batch.run
    writer = run_writer(run)
    items_writer_set(writer, run)
    try:
        with lock_timeouts():
            items = [item_load(pair) for pair in batch.payload]
            # The batch's writes and its record in one transaction, as in a local run.
            result, recorded = batch_transaction(
                run,
                writer,
                batch.number,
                items,
                lambda result: _batch_report_claimed(batch_id, token, result),
            )
    except _ClaimLost:
        return f"batch {batch_id}: claim taken over; its writes undone, the other worker's count"
    except Exception as exc:
        _batch_retry(batch, token, f"{type(exc).__name__}: {exc}")
        raise
    _batch_after_commit(run, recorded, result)
    return f"run {run.pk} batch {batch.number}: {result.status}"


def _batch_after_commit(run: SyncRun, batch: SyncBatch, result: BatchResult) -> None:
    """What a local run does after each committed batch: fetch its images (no transaction
    held open on a slow image server), count their warnings on the run, send batch_committed."""
    images = ImageSync(run.source)
    try:
        warnings = images.sync(result.images)
    finally:
        images.close()
    if warnings:
        with transaction.atomic():
            locked = SyncRun.objects.select_for_update().get(pk=run.pk)
            run_note_warnings(locked, warnings)
    batch_committed.send(sender=SyncRun, run=run, batch=batch, product_ids=result.product_ids)


def _batch_retry(batch: SyncBatch, token: str, reason: str) -> None:
    """After a worker's error: enqueue the batch again, or record it failed after
    PRODUCTSYNC['BATCH_ATTEMPTS'] claims. A database that refuses even this leaves the batch
    running, and the planner enqueues it again once its heartbeat is stale."""
    try:
        if batch.attempts >= app_settings.BATCH_ATTEMPTS:
            batch_give_up(batch, token, reason)
        elif SyncBatch.objects.filter(
            pk=batch.pk, status=BatchStatus.RUNNING, claimed_by=token
        ).update(
            status=BatchStatus.PENDING, claimed_by="", heartbeat_at=timezone.now(), error=reason
        ):
            batch_enqueue(batch)
    except DatabaseError:
        logger.exception(
            "run %s batch %s: could not record its failure", batch.run_id, batch.number
        )
