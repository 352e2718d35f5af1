"""django-q2 entry points; thin wrappers around the services."""

from productsync.models import SyncRun
from productsync.services import sync_run_execute


def sync_products(
    source: str | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    hide_missing: bool | None = None,
) -> int:
    """Run a sync (trigger `schedule` unless told otherwise) and return its run id."""
    return sync_run_execute(
        source, batch_size=batch_size, dry_run=dry_run, trigger=trigger, hide_missing=hide_missing
    ).pk
