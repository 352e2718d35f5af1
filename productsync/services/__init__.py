"""The sync's services: what the faces (admin, tasks, commands) call. One module per concern;
this package re-exports the public API only."""

from productsync.feeds import FORMATS, PRESETS, is_url
from productsync.services.alerts import feeds_overdue_check, run_alerts_judge, webhook_signature
from productsync.services.feeds import (
    PushTooLargeError,
    feed_find,
    feed_next_runs,
    feed_push,
    feed_run_execute,
    feed_run_spec,
    feed_schedules_apply,
    feed_sync_enqueue,
    feed_token_rotate,
    feed_token_valid,
    url_host_allowed,
)
from productsync.services.feeds_toml import FeedFileError, feeds_dump, feeds_load
from productsync.services.history import TERMINATED, sync_run_prune
from productsync.services.lease import sync_run_abort_stale
from productsync.services.locks import db_retry
from productsync.services.mode import RunMode
from productsync.services.preview import (
    sync_preview_confirm,
    sync_upload_enqueue,
    sync_upload_execute,
)
from productsync.services.queue import (
    SCHEDULE_NAME,
    Queued,
    sync_queue_state,
    sync_run_enqueue,
    sync_run_enqueue_retry,
    sync_run_queued,
    sync_schedule_apply,
)
from productsync.services.retry import sync_run_retry
from productsync.services.run import run_spec_execute, sync_run_execute
from productsync.services.selectors import (
    SEARCH_CHARS,
    product_dashboard_urls,
    run_batch_products,
    run_failures,
    run_image_failures,
    run_items,
    run_last_id,
    run_note_groups,
)
from productsync.services.source import source_key
from productsync.services.spec import RunSpec, run_mode_default, run_spec_build
from productsync.services.upload import upload_open, upload_store
from productsync.services.worker import sync_batch_execute
from productsync.writer import capture_install, capture_remove

__all__ = [
    "capture_install",
    "capture_remove",
    "FeedFileError",
    "PushTooLargeError",
    "feed_find",
    "feed_next_runs",
    "feed_push",
    "feed_run_execute",
    "feed_run_spec",
    "feed_schedules_apply",
    "feed_sync_enqueue",
    "feed_token_rotate",
    "feed_token_valid",
    "feeds_dump",
    "feeds_load",
    "feeds_overdue_check",
    "run_alerts_judge",
    "url_host_allowed",
    "webhook_signature",
    "run_image_failures",
    "run_note_groups",
    "FORMATS",
    "PRESETS",
    "SCHEDULE_NAME",
    "Queued",
    "RunMode",
    "RunSpec",
    "run_mode_default",
    "run_spec_build",
    "run_spec_execute",
    "db_retry",
    "is_url",
    "product_dashboard_urls",
    "run_batch_products",
    "run_failures",
    "run_items",
    "SEARCH_CHARS",
    "run_last_id",
    "source_key",
    "sync_batch_execute",
    "sync_preview_confirm",
    "sync_queue_state",
    "sync_run_abort_stale",
    "TERMINATED",
    "sync_run_enqueue",
    "sync_run_enqueue_retry",
    "sync_run_execute",
    "sync_run_prune",
    "sync_run_queued",
    "sync_run_retry",
    "sync_schedule_apply",
    "sync_upload_enqueue",
    "sync_upload_execute",
    "upload_open",
    "upload_store",
]
