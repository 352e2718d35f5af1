"""PRODUCTSYNC settings: defaults in one dict, read lazily so test overrides apply."""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Where the feed comes from: a path or an http(s) URL.
    "SOURCE": None,
    # Items per batch; each batch is one transaction.
    "BATCH_SIZE": 15,
    # Seconds a write waits for a row or table lock before the batch is recorded as failed.
    "LOCK_TIMEOUT": 10,
    # A running run whose heartbeat is older than this is taken for dead and marked aborted.
    "STALE_AFTER": 300,
    # HTTP sources: (connect, read) timeouts in seconds; a read timeout applies per read.
    "HTTP_TIMEOUT": (10, 60),
    # Retries of a GET after a connection error, a read timeout, 429 or 5xx.
    "HTTP_RETRIES": 3,
    # Backoff factor of the retries: waits of 0, 2x, 4x... seconds unless Retry-After says.
    "HTTP_BACKOFF": 1.0,
    # Extra request headers (auth tokens) by URL prefix: {"https://erp.example/": {...}}.
    # Sent only to URLs that start with the prefix; never printed nor stored.
    "HTTP_HEADERS": {},
    # An attribute code the product class lacks becomes a new text attribute of the class;
    # when False such an item fails.
    "CREATE_ATTRIBUTES": False,
    # An option or multi_option value missing from the attribute's option group is added to
    # the group; when False such an item fails.
    "CREATE_ATTRIBUTE_OPTIONS": False,
    # Hide (is_public=False) products of the source that a complete run did not see, as
    # `sync_products --hide-missing` does.
    "HIDE_MISSING": False,
    # ...unless more than this fraction of the source's products would be hidden at once.
    "HIDE_MISSING_MAX_FRACTION": 0.2,
    # Seconds to connect to / wait on an image server, and the largest image accepted.
    "IMAGE_TIMEOUT": 10,
    "IMAGE_MAX_BYTES": 10 * 1024 * 1024,
    # productsync_prune deletes runs that started more than this many days ago; None keeps all.
    "KEEP_DAYS": None,
    # A cron expression ("*/30 * * * *") for the django-q2 schedule of the sync, or None for
    # no schedule; applied by `migrate` and by `manage.py sync_products_schedule`.
    "SCHEDULE": None,
    # Who writes the batches of a run that does not say: "local" (the run's own process) or
    # "queue" (one django-q2 task per batch, for any number of qcluster processes).
    "WORKERS": "local",
    # Claims of a queued batch before it is recorded as failed (its worker died each time).
    "BATCH_ATTEMPTS": 3,
    # The admin's import tool: the largest feed file uploaded or fetched from a URL there...
    "UPLOAD_MAX_BYTES": 1024 * 1024 * 1024,
    # ...and the updated items of one real run recorded with their changed fields.
    "CHANGES_MAX": 100_000,
}

# The largest batch a run accepts: one batch is one transaction and a few bulk queries, and
# SQLite takes at most 32766 values per query.
MAX_BATCH_SIZE = 10_000


class AppSettings:
    """Attribute access to PRODUCTSYNC with DEFAULTS filled in, read on every access."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown productsync setting: {name}")
        return getattr(settings, "PRODUCTSYNC", {}).get(name, DEFAULTS[name])


app_settings = AppSettings()
