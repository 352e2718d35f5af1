"""The runs' temporary folders: one per run, named after its database and itself, under
PRODUCTSYNC['TEMP_DIR']."""

import contextlib
import hashlib
import os
import shutil
import tempfile

from django.db import connections, router

from productsync.conf import app_settings
from productsync.models import SyncRun

PREFIX = "productsync-run-"


def _prefix() -> str:
    """The folders' prefix for the runs of this database: two databases sharing TEMP_DIR (two
    shops on one host, a test run beside another) have runs of the same ids, and neither
    takes the other's folders for leftovers."""
    db = connections[router.db_for_write(SyncRun)].settings_dict
    where = "|".join(str(db.get(name)) for name in ("ENGINE", "NAME", "HOST", "PORT"))
    return f"{PREFIX}{hashlib.blake2b(where.encode(), digest_size=4).hexdigest()}-"


def run_temp_dir(run: SyncRun) -> str:
    """The folder of the run's temporary files (made when a reader first needs it)."""
    return os.path.join(app_settings.TEMP_DIR or tempfile.gettempdir(), f"{_prefix()}{run.pk}")


def run_temp_remove(run: SyncRun) -> None:
    shutil.rmtree(run_temp_dir(run), ignore_errors=True)


def temp_leftovers_remove() -> int:
    """Remove the folders of runs that no longer run (killed before they could remove
    theirs, or taken for dead); return how many. A running run's folder, on any host sharing
    TEMP_DIR, stays, and so do the folders of another database's runs."""
    root = app_settings.TEMP_DIR or tempfile.gettempdir()
    # Ours, and those named before folders named their database ("productsync-run-<id>").
    prefixes = (_prefix(), PREFIX)
    found: dict[str, int] = {}
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            for prefix in prefixes:
                if entry.name.startswith(prefix) and entry.name[len(prefix) :].isdigit():
                    found[entry.path] = int(entry.name[len(prefix) :])
    if not found:
        return 0
    running = set(
        SyncRun.objects.filter(
            pk__in=set(found.values()), status=SyncRun.Status.RUNNING
        ).values_list("pk", flat=True)
    )
    left = [path for path, run_id in found.items() if run_id not in running]
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    return len(left)
