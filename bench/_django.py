"""Set up Django for a bench script run as a whole process from the project root."""

import os
import sys
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
