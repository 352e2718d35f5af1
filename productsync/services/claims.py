"""A queued batch's claim: its outcome recorded by whoever holds the claim (a worker, or the
planner giving up on it), and the run completed by the last report."""

import logging

from django.db import transaction

from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import BatchResult, ItemFailure
from productsync.records import payload_dump
from productsync.services.history import batch_record, run_complete_if_done
from productsync.services.lease import BatchStatus
from productsync.services.queue import item_load
from productsync.services.validate import upc_of

logger = logging.getLogger(__name__)


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


def batch_failed_result(batch: SyncBatch, reason: str) -> BatchResult:
    """A queued batch's result with every item failed for reason."""
    result = BatchResult(
        batch.number, batch.first_position, batch.last_position, batch.items, error=reason
    )
    for item in map(item_load, batch.payload or []):
        result.failures.append(
            ItemFailure(item.position, upc_of(item.payload), reason, payload_dump(item.payload))
        )
    return result


def batch_give_up(batch: SyncBatch, token: str, reason: str) -> None:
    """Record a queued batch failed after its last attempt (if token still holds it)."""
    reason = f"the batch failed {batch.attempts} times, the last because {reason}"
    if batch_report(batch.pk, token, batch_failed_result(batch, reason)):
        logger.error("run %s batch %s: %s", batch.run_id, batch.number, reason)
