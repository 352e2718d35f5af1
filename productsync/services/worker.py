"""The worker of a queue run: it claims a batch once, writes it with the same code as a
local run, and the last one to report sets the run's status."""

import functools
import logging
import uuid

from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from productsync.conf import app_settings
from productsync.models import SyncBatch
from productsync.outcomes import BatchResult
from productsync.services.batch import BatchContext, batch_transaction
from productsync.services.claims import batch_give_up, batch_report
from productsync.services.items import items_writer_set
from productsync.services.lease import BatchStatus, Status, owner_name, sync_run_abort_stale
from productsync.services.locks import lock_timeouts
from productsync.services.mode import batch_after_commit, run_mode
from productsync.services.queue import batch_enqueue, item_load
from productsync.writer import ImageSync

logger = logging.getLogger(__name__)


class _ClaimLost(Exception):
    """Another worker took the batch over: this one's writes are undone with its record."""


def _batch_report_claimed(batch_id: int, token: str, result: BatchResult) -> SyncBatch:
    batch = batch_report(batch_id, token, result)
    if batch is None:
        raise _ClaimLost
    return batch


def sync_batch_execute(batch_id: int) -> str:
    """Write one batch of a queue run (the django-q2 task). Safe to deliver twice: the batch
    is claimed once, and its writes are idempotent upserts if it must be written again."""
    token = f"{owner_name()}:{uuid.uuid4().hex[:8]}"
    sync_run_abort_stale()  # a dead planner's run is ended here, its batches then skipped
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
    mode = run_mode(run)
    writer = mode.writer(run)
    items_writer_set(writer, run)
    # The batch's writes and its record in one transaction, as in a local run.
    context = BatchContext(
        run, mode, writer, functools.partial(_batch_report_claimed, batch_id, token)
    )
    try:
        with lock_timeouts():
            items = [item_load(pair) for pair in batch.payload]
            result, recorded = batch_transaction(context, batch.number, items)
    except _ClaimLost:
        return f"batch {batch_id}: claim taken over; its writes undone, the other worker's count"
    except Exception as exc:
        _batch_retry(batch, token, f"{type(exc).__name__}: {exc}")
        raise
    images = ImageSync(run.source)
    try:
        batch_after_commit(run, recorded, result, images)
    finally:
        images.close()
    return f"run {run.pk} batch {batch.number}: {result.status}"


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
