"""System checks for the PRODUCTSYNC settings."""

from django.conf import settings
from django.core.checks import Error, register

from productsync.conf import DEFAULTS, MAX_BATCH_SIZE, app_settings


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register()
def check_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    user = getattr(settings, "PRODUCTSYNC", {})
    if not isinstance(user, dict):
        return [Error("PRODUCTSYNC must be a dict.", id="productsync.E001")]
    for key in sorted(set(user) - set(DEFAULTS)):
        errors.append(
            Error(
                f"Unknown PRODUCTSYNC setting {key!r}.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="productsync.E002",
            )
        )
    for key in ("BATCH_SIZE", "LOCK_TIMEOUT", "STALE_AFTER"):
        if not _positive_int(getattr(app_settings, key)):
            errors.append(
                Error(f"PRODUCTSYNC[{key!r}] must be a positive integer.", id="productsync.E003")
            )
    if _positive_int(app_settings.BATCH_SIZE) and app_settings.BATCH_SIZE > MAX_BATCH_SIZE:
        errors.append(
            Error(
                f"PRODUCTSYNC['BATCH_SIZE'] must be at most {MAX_BATCH_SIZE}.",
                id="productsync.E005",
            )
        )
    source = app_settings.SOURCE
    if source is not None and not isinstance(source, str):
        errors.append(Error("PRODUCTSYNC['SOURCE'] must be a string.", id="productsync.E004"))
    return errors
