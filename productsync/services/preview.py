"""The admin's import tool: preview a feed given in the admin (every item's outcome and changed
fields), sync it, or confirm a preview: sync exactly the file it read."""

from productsync.exceptions import ProductSyncError
from productsync.models import SyncRun
from productsync.services.queue import Queued, task_enqueue
from productsync.services.run import sync_run_execute
from productsync.services.upload import (
    Upload,
    mapping_check,
    mapping_digest,
    source_of,
    upload_check,
    upload_digest,
    upload_fetch,
    upload_path,
)


def sync_upload_enqueue(
    *,
    source: str,
    upload: Upload | None,
    batch_size: int,
    feed_options: dict,
    dry_run: bool,
    preview_of: int | None = None,
    mapping_sha256: str | None = None,
) -> Queued:
    """Queue a preview (dry_run) or a sync of an uploaded file or a URL (trigger `admin`) for
    the django-q2 cluster; return the task id and the queue state. mapping_sha256: the digest
    the mapping file must still have when the task runs (a confirmed preview's)."""
    source = source_of(upload, source)
    stored = (
        {"name": upload.name, "sha256": upload.sha256, "filename": upload.filename}
        if upload
        else None
    )
    if stored and mapping_sha256 is not None:
        stored["mapping_sha256"] = mapping_sha256
    return task_enqueue(
        "productsync.tasks.sync_upload",
        source,
        batch_size,
        dry_run,
        feed_options=feed_options,
        upload=stored,
        preview_of=preview_of,
        task_name=f"productsync {'preview' if dry_run else 'sync'} of an upload from the admin",
    )


def sync_upload_execute(
    source: str,
    batch_size: int,
    dry_run: bool,
    *,
    feed_options: dict | None = None,
    upload: dict | None = None,
    preview_of: int | None = None,
    trigger: str = SyncRun.Trigger.ADMIN,
    queued_as: str = "",
) -> SyncRun:
    """Preview (dry_run, with every item's changes) or sync a feed given in the admin. A URL is
    first fetched into storage, so a preview of it can be confirmed like an upload; an upload
    that changed since it was queued is refused. queued_as: the key of the admin's task that
    asked for it (see task_enqueue)."""
    if upload is None:
        stored = upload_fetch(source)
    else:
        stored = Upload(upload["name"], upload_path(upload["name"]), "", upload["filename"])
        if upload_digest(stored.name) != upload["sha256"]:
            raise ProductSyncError(f"the file {stored.filename} changed since it was queued")
        if "mapping_sha256" in upload:
            mapping_check(feed_options, upload["mapping_sha256"], "the sync was queued")
        stored = Upload(stored.name, stored.path, upload["sha256"], stored.filename)
    record = {
        "upload": stored.name,
        "upload_name": stored.filename[:255],
        "upload_sha256": stored.sha256,
        "feed_options": feed_options or {},
        "mapping_sha256": _mapping_read(feed_options),
        "preview_of_id": preview_of,
        "queued_as": queued_as,
    }
    options = dict(feed_options or {})
    allow_mass_change = options.pop("allow_mass_change", None)  # the run's, not the reader's
    return sync_run_execute(
        stored.path,
        batch_size=batch_size,
        dry_run=dry_run,
        trigger=trigger,
        feed_options=options,
        allow_mass_change=allow_mass_change,
        partial=options.get("partial") or None,
        diff=dry_run,
        record=record,
    )


def _mapping_read(feed_options: dict | None) -> str:
    try:
        return mapping_digest(feed_options)
    except OSError:
        return ""  # reading the feed says the mapping is missing


def sync_preview_confirm(run_id: int) -> Queued:
    """Queue the sync of exactly the file a preview that read it whole read, with the same
    mapping; ProductSyncError when the run is no such preview or its file or mapping changed
    since."""
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None or not run.dry_run or not run.upload:
        raise ProductSyncError(f"run {run_id} is not a preview of an uploaded feed")
    # A preview stopped early (aborted, failed) never showed the rest of the feed.
    if run.status not in (SyncRun.Status.SUCCEEDED, SyncRun.Status.COMPLETED_WITH_FAILURES):
        raise ProductSyncError(
            f"run {run_id} is {run.status}: only a finished preview is confirmed"
        )
    upload_check(run)
    upload = Upload(run.upload, upload_path(run.upload), run.upload_sha256, run.upload_name)
    return sync_upload_enqueue(
        source=upload.path,
        upload=upload,
        batch_size=run.batch_size,
        feed_options=run.feed_options,
        dry_run=False,
        preview_of=run.pk,
        mapping_sha256=run.mapping_sha256,
    )
