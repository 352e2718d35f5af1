"""Retry: a finished run's failed items run again as a new run linked to it."""

import collections

from productsync.exceptions import ProductSyncError
from productsync.exports import failure_payloads, jsonl_line
from productsync.feeds import ByteStream, Feed, jsonl_items
from productsync.models import SyncFailure, SyncRun
from productsync.outcomes import FeedItem
from productsync.services.lease import Status
from productsync.services.run import sync_run_execute


def sync_run_retry(
    run_id: int, *, trigger: str = SyncRun.Trigger.ADMIN, duplicates: bool = False, key: str = ""
) -> SyncRun:
    """Run again exactly the failed items of a finished run, as a new run linked to it.

    The feed is the run's failures as JSON Lines (the file the admin offers for download),
    built from the failure rows so a worker on any machine can run it; each item keeps its
    position in the original feed, so the failures of both runs line up. An item that failed
    only as a duplicate of an earlier item of its feed is left out unless duplicates: alone
    in the retry it would overwrite the product its earlier twin wrote. The new run keeps the
    original's source (and so its lease), batch size and dry-run flag; key is its queued_as."""
    original = SyncRun.objects.get(pk=run_id)
    if original.status == Status.RUNNING:
        raise ProductSyncError(f"run {run_id} is still running: retry it when it has finished")
    failures = SyncFailure.objects.filter(run=original)
    total = failures.count()
    count = total if duplicates else failures.filter(duplicate_of=None).count()
    if not total:
        raise ProductSyncError(f"run {run_id} has no failed items to retry")
    if not count:
        raise ProductSyncError(
            f"run {run_id} failed only items that repeat the upc of an earlier item of its "
            "feed: ask for duplicates to write them over their earlier twins"
        )
    notes = []
    if count < total:
        left = total - count
        notes.append(
            f"{left} item{'s' if left != 1 else ''} that failed as a duplicate of an earlier "
            "item of the feed not retried (ask for duplicates to write them)"
        )

    def open_failures(source: str) -> Feed:
        # Positions of the lines read ahead into the stream's buffer, taken in step by the
        # items parsed from it (one item a line).
        positions: collections.deque[int] = collections.deque()

        def lines():
            for position, raw in failure_payloads(original.pk, duplicates):
                positions.append(position)
                yield jsonl_line(raw).encode()

        def items(stream):
            for item in jsonl_items(stream):
                yield FeedItem(positions.popleft(), item.payload)

        stream = ByteStream.of_chunks(lines())
        return Feed(f"failures of run {run_id}", stream, items, total_items=count)

    return sync_run_execute(
        original.source,
        batch_size=original.batch_size,
        dry_run=original.dry_run,
        trigger=trigger,
        retry_of=original,
        open_feed=open_failures,
        record={"notes": notes, "queued_as": key},
    )
