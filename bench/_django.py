"""Set up Django for a bench script run as a whole process from the project root, and run
one of its steps in a process of its own."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(extra_apps: tuple[str, ...] = ()) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    import django
    from django.conf import settings

    if extra_apps:
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, *extra_apps]

    django.setup()


def child_measure(script: str, path: Path) -> tuple[str, dict]:
    """Run `script --child path` in a process of its own: what it printed, and its wall time
    and peak RSS (that process's own, not this one's)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, script, "--child", str(path)], stdout=subprocess.PIPE, cwd=ROOT
    )
    out = process.stdout.read().decode()
    _, _, usage = os.wait4(process.pid, 0)
    return out, {
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
