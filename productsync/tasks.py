"""django-q2 entry points; thin wrappers around the services."""

from productsync.models import SyncRun
from productsync.services import sync_run_execute


def sync_products(
    source: str | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    feed_options: dict | None = None,
    hide_missing: bool | None = None,
) -> int:
    """Run a sync (trigger `schedule` unless told otherwise) and return its run id;
    feed_options as for sync_run_execute (format, delimiter, encoding, mapping)."""
    return sync_run_execute(
        source,
        batch_size=batch_size,
        dry_run=dry_run,
        trigger=trigger,
        feed_options=feed_options,
        hide_missing=hide_missing,
    ).pk
