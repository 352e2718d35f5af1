"""django-q2 entry points; thin wrappers around the services."""

from productsync.models import SyncRun
from productsync.services import sync_run_execute, sync_run_retry


def sync_products(
    source: str | None = None,
    batch_size: int | None = None,
    dry_run: bool = False,
    trigger: str = SyncRun.Trigger.SCHEDULE,
) -> int:
    """Run a sync (trigger `schedule` unless told otherwise) and return its run id."""
    return sync_run_execute(source, batch_size=batch_size, dry_run=dry_run, trigger=trigger).pk


def sync_products_retry(run_id: int, trigger: str = SyncRun.Trigger.ADMIN) -> int:
    """Retry the failed items of a finished run as a new run; return the new run's id."""
    return sync_run_retry(run_id, trigger=trigger).pk
