"""django-q2 entry points; thin wrappers around the services."""

from productsync.models import SyncRun
from productsync.services import (
    feed_run_execute,
    feeds_overdue_check,
    run_spec_build,
    run_spec_execute,
    sync_batch_execute,
    sync_run_retry,
    sync_upload_execute,
)


def sync_products(
    source: str | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    feed_options: dict | None = None,
    hide_missing: bool | None = None,
    workers: str | None = None,
    queued_as: str = "",
) -> int:
    """Run a sync (trigger `schedule` unless told otherwise) and return its run id;
    feed_options as for run_spec_build (format, delimiter, encoding, mapping). workers
    defaults to PRODUCTSYNC['WORKERS']: with "queue" this task plans the run and waits while
    other django-q2 workers write its batches."""
    spec = run_spec_build(
        source,
        batch_size=batch_size,
        dry_run=dry_run,
        trigger=trigger,
        feed_options=feed_options,
        hide_missing=hide_missing,
        workers=workers,
        record={"queued_as": queued_as},
    )
    return run_spec_execute(spec).pk


def sync_products_retry(
    run_id: int,
    trigger: str = SyncRun.Trigger.ADMIN,
    duplicates: bool = False,
    queued_as: str = "",
) -> int:
    """Retry the failed items of a finished run as a new run (the items that failed as in-feed
    duplicates only when duplicates); return the new run's id."""
    return sync_run_retry(run_id, trigger=trigger, duplicates=duplicates, key=queued_as).pk


def sync_batch(batch_id: int) -> str:
    """Write one batch of a queue run; enqueued by its planner, one task per batch."""
    return sync_batch_execute(batch_id)


def sync_upload(
    source: str,
    batch_size: int,
    dry_run: bool,
    feed_options: dict | None = None,
    upload: dict | None = None,
    preview_of: int | None = None,
    queued_as: str = "",
) -> int:
    """Preview or sync a feed given in the admin (an uploaded file, or a URL fetched first);
    return the run's id."""
    return sync_upload_execute(
        source,
        batch_size,
        dry_run,
        feed_options=feed_options,
        upload=upload,
        preview_of=preview_of,
        queued_as=queued_as,
    ).pk


def feed_sync(
    feed: int | str,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    dry_run: bool = False,
    upload: dict | None = None,
    queued_as: str = "",
) -> int | None:
    """Run a feed (by id or name) as its schedule makes it and return the run's id (trigger
    `schedule` unless told otherwise; dry_run: a preview recording each item's changes).
    upload: a file pushed to the feed (its run recorded `queued`, started here). A feed
    deleted or disabled since it was queued makes no run: None. queued_as: the key of the
    task that queued it, recorded on the run (SyncRun.queued_as)."""
    return feed_run_execute(
        feed, trigger=trigger, dry_run=dry_run, diff=dry_run, upload=upload, queued_as=queued_as
    )


def feeds_overdue() -> list[str]:
    """Alert for each feed that has had no successful run for longer than its
    overdue_after; return their names. Scheduled while a feed has overdue_after."""
    return feeds_overdue_check()
