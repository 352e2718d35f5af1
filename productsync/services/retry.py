"""Retry: a finished run's failed items run again as a new run linked to it."""

from productsync.exceptions import ProductSyncError
from productsync.exports import failures_jsonl
from productsync.feeds import ByteStream, Feed, jsonl_items
from productsync.models import SyncFailure, SyncRun
from productsync.services.lease import Status
from productsync.services.run import sync_run_execute


def sync_run_retry(run_id: int, *, trigger: str = SyncRun.Trigger.ADMIN) -> SyncRun:
    """Run again exactly the failed items of a finished run, as a new run linked to it.

    The feed is the run's failures as JSON Lines (the same file the admin offers for
    download), built from the failure rows so a worker on any machine can run it. The new
    run keeps the original's source (and so its lease), batch size and dry-run flag."""
    original = SyncRun.objects.get(pk=run_id)
    if original.status == Status.RUNNING:
        raise ProductSyncError(f"run {run_id} is still running: retry it when it has finished")
    count = SyncFailure.objects.filter(run=original).count()
    if not count:
        raise ProductSyncError(f"run {run_id} has no failed items to retry")

    def open_failures(source: str) -> Feed:
        lines = (line.encode() for line in failures_jsonl(original.pk))
        return Feed(
            f"failures of run {run_id}", ByteStream.of_chunks(lines), jsonl_items, total_items=count
        )

    return sync_run_execute(
        original.source,
        batch_size=original.batch_size,
        dry_run=original.dry_run,
        trigger=trigger,
        retry_of=original,
        open_feed=open_failures,
    )
