"""django-q2 entry points; thin wrappers around the services."""

from productsync.models import SyncRun
from productsync.services import (
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
