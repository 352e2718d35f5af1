"""System checks for the PRODUCTSYNC settings."""

import os

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
from productsync.feeds import credentials_errors


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
    errors += [
        Error(f"PRODUCTSYNC['CREDENTIALS']: {problem}.", id="productsync.E040")
        for problem in credentials_errors(app_settings.CREDENTIALS)
    ]
    errors += _feeds_errors()
    errors += _upload_dir_errors()
    errors += _temp_errors()
    return errors


def _host_list(value: object) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(e, str) and e for e in value)


# Feeds, alerts and outgoing requests to private hosts: ids E241-E244.
def _feeds_errors() -> list[Error]:
    errors = []
    if not _host_list(app_settings.ALLOW_PRIVATE):
        errors.append(
            Error(
                "PRODUCTSYNC['ALLOW_PRIVATE'] must be a list of host names and networks.",
                hint='["erp.internal", "10.1.0.0/16"]',
                id="productsync.E241",
            )
        )
    secret = app_settings.WEBHOOK_SECRET
    if secret is not None and not (isinstance(secret, str | bytes) and secret):
        errors.append(
            Error(
                "PRODUCTSYNC['WEBHOOK_SECRET'] must be a non-empty string or None.",
                id="productsync.E242",
            )
        )
    base = app_settings.BASE_URL
    if base is not None and not (
        isinstance(base, str) and base.lower().startswith(("http://", "https://"))
    ):
        errors.append(
            Error(
                "PRODUCTSYNC['BASE_URL'] must be the site's http(s) URL or None.",
                hint="https://shop.example.com",
                id="productsync.E243",
            )
        )
    for key in ("WEBHOOK_TIMEOUT", "OVERDUE_CHECK_MINUTES"):
        if not _positive_int(getattr(app_settings, key)):
            errors.append(
                Error(f"PRODUCTSYNC[{key!r}] must be a positive integer.", id="productsync.E244")
            )
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


# The admin's stored feeds: E175.
def _upload_dir_errors() -> list[Error]:
    configured = app_settings.UPLOAD_DIR
    if configured is not None and not (isinstance(configured, str) and configured):
        return [Error("PRODUCTSYNC['UPLOAD_DIR'] must be a folder or None.", id="productsync.E175")]
    from productsync.services.upload import upload_dir

    folder = upload_dir()
    for served in ("MEDIA_ROOT", "STATIC_ROOT"):
        root = getattr(settings, served, None)
        if root and os.path.commonpath([os.path.abspath(root), folder]) == os.path.abspath(root):
            return [
                Error(
                    f"PRODUCTSYNC['UPLOAD_DIR'] ({folder}) is inside {served}: uploaded feeds "
                    "would be served to anyone.",
                    hint="Use a folder the web server does not serve.",
                    id="productsync.E175",
                )
            ]
    return []


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
    fraction = app_settings.MASS_CHANGE_MAX_FRACTION
    if not _number(fraction, 1):
        errors.append(
            Error(
                "PRODUCTSYNC['MASS_CHANGE_MAX_FRACTION'] must be a number from 0 to 1.",
                id="productsync.E034",
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


def _temp_errors() -> list[Error]:
    folder = app_settings.TEMP_DIR
    if folder is None or (
        isinstance(folder, str) and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
    ):
        return []
    return [
        Error(
            f"PRODUCTSYNC['TEMP_DIR'] must be None or a writable folder, not {folder!r}.",
            id="productsync.E041",
        )
    ]


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
