"""The runs' temporary folders: one per run, named after it, under PRODUCTSYNC['TEMP_DIR']."""

import contextlib
import os
import shutil
import tempfile

from productsync.conf import app_settings
from productsync.models import SyncRun

PREFIX = "productsync-run-"


def run_temp_dir(run: SyncRun) -> str:
    """The folder of the run's temporary files (made when a reader first needs it)."""
    return os.path.join(app_settings.TEMP_DIR or tempfile.gettempdir(), f"{PREFIX}{run.pk}")


def run_temp_remove(run: SyncRun) -> None:
    shutil.rmtree(run_temp_dir(run), ignore_errors=True)


def temp_leftovers_remove() -> int:
    """Remove the folders of runs that no longer run (killed before they could remove
    theirs, or taken for dead); return how many. A running run's folder, on any host sharing
    TEMP_DIR, stays."""
    root = app_settings.TEMP_DIR or tempfile.gettempdir()
    found: dict[int, str] = {}
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        found = {
            int(entry.name[len(PREFIX) :]): entry.path
            for entry in entries
            if entry.name.startswith(PREFIX) and entry.name[len(PREFIX) :].isdigit()
        }
    if not found:
        return 0
    running = set(
        SyncRun.objects.filter(pk__in=found, status=SyncRun.Status.RUNNING).values_list(
            "pk", flat=True
        )
    )
    for run_id in found.keys() - running:
        shutil.rmtree(found[run_id], ignore_errors=True)
    return len(found.keys() - running)
