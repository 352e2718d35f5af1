"""System checks for the PRODUCTSYNC settings."""

from croniter import croniter
from django.conf import settings
from django.core.checks import Error, register

from productsync.conf import (
    DEFAULTS,
    LIMITS,
    MAX_BATCH_SIZE,
    MINIMUMS,
    app_settings,
    batch_size_allowed,
    failures_limit,
)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register("productsync")
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
    positive = ("BATCH_SIZE", "PARTIAL_BATCH_SIZE", "LOCK_TIMEOUT", "STALE_AFTER", "BATCH_ATTEMPTS")
    # UPLOAD_MAX_BYTES: the admin's import tool; CHANGES_MAX below.
    for key in (*positive, "IMAGE_TIMEOUT", "IMAGE_MAX_BYTES", "UPLOAD_MAX_BYTES"):
        if not _positive_int(getattr(app_settings, key)):
            errors.append(
                Error(f"PRODUCTSYNC[{key!r}] must be a positive integer.", id="productsync.E003")
            )
    changes_max = app_settings.CHANGES_MAX
    if not (_positive_int(changes_max) or changes_max == 0) or isinstance(changes_max, bool):
        errors.append(
            Error("PRODUCTSYNC['CHANGES_MAX'] must be a whole number >= 0.", id="productsync.E150")
        )
    keep_days = app_settings.KEEP_DAYS
    if keep_days is not None and not _positive_int(keep_days):
        errors.append(
            Error(
                "PRODUCTSYNC['KEEP_DAYS'] must be a positive integer or None.",
                id="productsync.E011",
            )
        )
    errors += _range_errors()
    for key in ("BATCH_SIZE", "PARTIAL_BATCH_SIZE"):
        size = getattr(app_settings, key)
        if _positive_int(size) and not batch_size_allowed(size):
            errors.append(
                Error(
                    f"PRODUCTSYNC[{key!r}] must be at most {MAX_BATCH_SIZE}.", id="productsync.E014"
                )
            )
    source = app_settings.SOURCE
    if source is not None and not isinstance(source, str):
        errors.append(Error("PRODUCTSYNC['SOURCE'] must be a string.", id="productsync.E004"))
    errors += _http_errors()
    errors += _catalogue_errors()
    errors += _queue_errors()
    errors += _guard_errors()
    errors += _partial_errors()
    return errors


# Outgoing requests, images and HTML: ids E171-E174.
def _guard_errors() -> list[Error]:
    errors = []
    for key in ("HTTP_DEADLINE", "HTTP_RETRY_AFTER_MAX"):
        if not (_number(getattr(app_settings, key)) and getattr(app_settings, key) > 0):
            errors.append(
                Error(f"PRODUCTSYNC[{key!r}] must be a positive number.", id="productsync.E171")
            )
    if not _positive_int(app_settings.IMAGE_MAX_PIXELS):
        errors.append(
            Error(
                "PRODUCTSYNC['IMAGE_MAX_PIXELS'] must be a positive integer.", id="productsync.E172"
            )
        )
    allowed = app_settings.IMAGE_ALLOW_PRIVATE
    if not (isinstance(allowed, list | tuple) and all(isinstance(e, str) and e for e in allowed)):
        errors.append(
            Error(
                "PRODUCTSYNC['IMAGE_ALLOW_PRIVATE'] must be a list of host names and networks.",
                hint='["images.internal", "10.1.0.0/16"]',
                id="productsync.E173",
            )
        )
    if not isinstance(app_settings.SANITISE_HTML, bool):
        errors.append(
            Error("PRODUCTSYNC['SANITISE_HTML'] must be True or False.", id="productsync.E174")
        )
    return errors


# Partial feeds.
def _partial_errors() -> list[Error]:
    errors = []
    if not isinstance(app_settings.PARTIAL, bool):
        errors.append(Error("PRODUCTSYNC['PARTIAL'] must be True or False.", id="productsync.E030"))
    if not isinstance(app_settings.STOCK_AUTHORITATIVE, bool):
        errors.append(
            Error(
                "PRODUCTSYNC['STOCK_AUTHORITATIVE'] must be True or False.",
                id="productsync.E032",
            )
        )
    limit = app_settings.MAX_FAILURES
    if limit is not None and failures_limit(limit) is None:
        errors.append(
            Error(
                "PRODUCTSYNC['MAX_FAILURES'] must be None, a whole number of items or a "
                "percentage up to 100% such as '10%'.",
                id="productsync.E033",
            )
        )
    partner = app_settings.PARTNER
    if partner is not None and not (isinstance(partner, str) and 0 < len(partner.strip()) <= 128):
        errors.append(
            Error(
                "PRODUCTSYNC['PARTNER'] must be a partner's name (1-128 characters) or None.",
                id="productsync.E031",
            )
        )
    return errors


def _range_errors() -> list[Error]:
    """Whole-number settings beyond what fits where they are used."""
    errors = []
    for key, largest in LIMITS.items():
        value = getattr(app_settings, key)
        if key in ("HTTP_TIMEOUT", "HTTP_BACKOFF", "HTTP_RETRIES"):
            continue  # numbers, checked with their shape in _http_errors
        smallest = MINIMUMS.get(key, 1)
        if value is None or (_positive_int(value) and smallest <= value <= largest):
            continue
        if key in MINIMUMS or _positive_int(value):
            errors.append(
                Error(
                    f"PRODUCTSYNC[{key!r}] must be a whole number from {smallest} to {largest}.",
                    id="productsync.E015",
                )
            )
    return errors


def _queue_errors() -> list[Error]:
    errors = []
    schedule = app_settings.SCHEDULE
    if schedule is not None and not (isinstance(schedule, str) and croniter.is_valid(schedule)):
        errors.append(
            Error(
                f"PRODUCTSYNC['SCHEDULE'] must be a cron expression or None, not {schedule!r}.",
                hint="For example '*/30 * * * *' (every 30 minutes).",
                id="productsync.E012",
            )
        )
    if app_settings.WORKERS not in ("local", "queue"):
        errors.append(
            Error("PRODUCTSYNC['WORKERS'] must be 'local' or 'queue'.", id="productsync.E013")
        )
    return errors


def _number(value: object, largest: float = float("inf")) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= largest


def _http_errors() -> list[Error]:
    errors = []
    timeout = app_settings.HTTP_TIMEOUT
    if not (
        isinstance(timeout, list | tuple)
        and len(timeout) == 2
        and all(_number(t, LIMITS["HTTP_TIMEOUT"]) and t > 0 for t in timeout)
    ):
        errors.append(
            Error(
                "PRODUCTSYNC['HTTP_TIMEOUT'] must be (connect, read): two positive seconds, "
                f"each at most {LIMITS['HTTP_TIMEOUT']}.",
                id="productsync.E005",
            )
        )
    retries = app_settings.HTTP_RETRIES
    if not (
        isinstance(retries, int)
        and not isinstance(retries, bool)
        and 0 <= retries <= LIMITS["HTTP_RETRIES"]
    ):
        errors.append(
            Error(
                f"PRODUCTSYNC['HTTP_RETRIES'] must be a whole number from 0 to "
                f"{LIMITS['HTTP_RETRIES']}.",
                id="productsync.E006",
            )
        )
    if not _number(app_settings.HTTP_BACKOFF, LIMITS["HTTP_BACKOFF"]):
        errors.append(
            Error(
                f"PRODUCTSYNC['HTTP_BACKOFF'] must be a number from 0 to {LIMITS['HTTP_BACKOFF']}.",
                id="productsync.E007",
            )
        )
    headers = app_settings.HTTP_HEADERS
    if not (
        isinstance(headers, dict)
        and all(
            isinstance(prefix, str)
            and prefix.lower().startswith(("http://", "https://"))
            and isinstance(values, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())
            for prefix, values in headers.items()
        )
    ):
        errors.append(
            Error(
                "PRODUCTSYNC['HTTP_HEADERS'] must map URL prefixes (http:// or https://) to "
                "dicts of header names to strings.",
                hint='{"https://erp.example.com/": {"Authorization": "Bearer ..."}}',
                id="productsync.E008",
            )
        )
    return errors


def _catalogue_errors() -> list[Error]:
    errors = []
    for key in ("CREATE_ATTRIBUTES", "CREATE_ATTRIBUTE_OPTIONS", "HIDE_MISSING", "FETCH_IMAGES"):
        if not isinstance(getattr(app_settings, key), bool):
            errors.append(
                Error(f"PRODUCTSYNC[{key!r}] must be True or False.", id="productsync.E009")
            )
    fraction = app_settings.HIDE_MISSING_MAX_FRACTION
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not 0 <= fraction <= 1
    ):
        errors.append(
            Error(
                "PRODUCTSYNC['HIDE_MISSING_MAX_FRACTION'] must be a number from 0 to 1.",
                id="productsync.E010",
            )
        )
    return errors
