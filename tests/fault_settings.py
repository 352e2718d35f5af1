"""Settings of manage.py subprocesses in fault tests: the demo shop's, plus overrides."""

import json
import os

from shop.settings import *  # noqa: F403
from shop.settings import DATABASES, PRODUCTSYNC

# PRODUCTSYNC keys to override, as JSON (e.g. {"STALE_AFTER": 1}).
PRODUCTSYNC = {**PRODUCTSYNC, **json.loads(os.environ.get("PRODUCTSYNC_OVERRIDES", "{}"))}
# Connection options to add, as JSON (e.g. {"application_name": "victim"} on PostgreSQL).
DATABASES["default"]["OPTIONS"] = {
    **DATABASES["default"].get("OPTIONS", {}),
    **json.loads(os.environ.get("DATABASE_OPTIONS", "{}")),
}
if os.environ.get("SQLITE_READ_ONLY") == "1":
    # Root ignores file permissions; SQLite's read-only mode refuses every write to anyone.
    DATABASES["default"]["NAME"] = f"file:{DATABASES['default']['NAME']}?mode=ro"
if os.environ.get("BATCH_PAUSE"):
    # Each committed batch lingers a moment, so that a signal a test sends after batch N lands
    # mid-run however fast the sync has become.
    import time

    from productsync.signals import batch_committed

    def _pause(**kwargs) -> None:
        time.sleep(float(os.environ["BATCH_PAUSE"]))

    batch_committed.connect(_pause, weak=False)
