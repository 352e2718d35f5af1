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
