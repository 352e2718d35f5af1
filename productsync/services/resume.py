"""Resume: where an aborted or failed run's feed is to be read again."""

from typing import NamedTuple

from productsync.exceptions import ProductSyncError
from productsync.models import SyncRun
from productsync.services.history import UNFINISHED
from productsync.services.lease import Status, sync_run_abort_stale
from productsync.services.source import source_display, source_key


class ResumePoint(NamedTuple):
    run: SyncRun  # the run to resume
    position: int  # the feed position of its first uncommitted batch


def resume_point(run_id: int, source: str | None) -> ResumePoint:
    """Where the run run_id, to be resumed, is to be read again."""
    sync_run_abort_stale()
    old = SyncRun.objects.filter(pk=run_id).first()
    if old is None:
        raise ProductSyncError(f"run {run_id} does not exist")
    if old.status not in (Status.ABORTED, Status.FAILED) or old.dry_run:
        raise ProductSyncError(
            f"run {run_id} is {'a dry run' if old.dry_run else old.status}: only an aborted "
            "or failed run can be resumed"
        )
    if source and source_display(source_key(source)) != old.source:
        raise ProductSyncError(f"run {run_id} read {old.source}, not {source}")
    later = old.resumed_by.exclude(status=Status.SKIPPED).first()
    if later is not None:
        raise ProductSyncError(f"run {run_id} was already resumed by run {later.pk}")
    position = old.start_position
    # Local runs record batches in feed order once committed; a queue run also has batches
    # still pending or running, and its first such batch is where the feed must be re-read.
    for first, last, status in old.batch_set.order_by("number").values_list(
        "first_position", "last_position", "status"
    ):
        if status in UNFINISHED:
            return ResumePoint(old, first)
        position = last + 1
    return ResumePoint(old, position)
