"""PRODUCTSYNC settings: defaults in one dict, read lazily so test overrides apply."""

import re
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
    # Outgoing requests (feeds and images):
    # seconds a feed's GET may take in all, from connecting to the last byte of its body, so
    # that no server trickling bytes can hold a run;
    "HTTP_DEADLINE": 3600,
    # a server's Retry-After longer than this many seconds is not waited for: the request fails.
    "HTTP_RETRY_AFTER_MAX": 300,
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
    # Seconds one image may take to fetch in all (connect, redirects, retries, body), and the
    # largest image accepted.
    "IMAGE_TIMEOUT": 10,
    "IMAGE_MAX_BYTES": 10 * 1024 * 1024,
    # Platform exports: False leaves the images feeds name unfetched (and ProductImages as
    # they are), e.g. a first import of a shop's export while its CDN is not to be used.
    "FETCH_IMAGES": True,
    # Images: the most pixels (width x height) an image may have, checked before it
    # is decoded;
    "IMAGE_MAX_PIXELS": 25_000_000,
    # images are fetched only from public addresses, except from these host names and
    # networks ("cdn.internal", "10.1.0.0/16"): private, loopback, link-local and reserved
    # addresses are refused.
    "IMAGE_ALLOW_PRIVATE": [],
    # Product descriptions and rich-text attributes are sanitised (nh3) before they are
    # stored: formatting kept, scripts, event handlers and javascript: URLs dropped. False
    # stores them as given, for feeds as trusted as the shop's own templates.
    "SANITISE_HTML": True,
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
    # Bounded inputs: the longest feed line, JSON item or CSV row, in bytes (CSV:
    # characters), and the longest text field (a description), in characters. An item over
    # either fails alone; the reader holds at most about MAX_ITEM_BYTES of it.
    "MAX_ITEM_BYTES": 16 * 1024 * 1024,
    "MAX_TEXT_LENGTH": 8 * 1024 * 1024,
    # Partial feeds: with PARTIAL, runs that do not say are partial: their items carry only
    # what they change (a stock file); nothing is created or hidden.
    "PARTIAL": False,
    # The partner of a stock file's rows that name none (makes a run partial), as
    # `sync_products --partner NAME` gives it.
    "PARTNER": None,
    # Items per batch of a partial run that gives no batch size: a stock file's rows are
    # cheap, and a batch's commit, stamp and record are paid per batch (docs/benchmarks.md).
    "PARTIAL_BATCH_SIZE": 5000,
    # A feed's stock levels overwrite the shop's whenever its items are written (orders'
    # consumption included); by default a level is written only when the feed's changes.
    "STOCK_AUTHORITATIVE": False,
    # Runs with more failed items than this (a count, or "N%" of the items read) stop
    # failed; None: no limit.
    "MAX_FAILURES": None,
    # A run that would clear, zero or change one field of more than this fraction of the
    # existing products its first items match stops failed before it writes anything.
    "MASS_CHANGE_MAX_FRACTION": 0.5,
    # The largest feed file kept in a local file: uploaded or fetched from a URL in the
    # admin's import tool, or fetched from an SFTP, FTP or S3 source...
    "UPLOAD_MAX_BYTES": 1024 * 1024 * 1024,
    # ...kept in this folder (None: `productsync-uploads` beside MEDIA_ROOT), never in the
    # served media: the admin hands them only to staff, as attachments...
    "UPLOAD_DIR": None,
    # Where a run keeps its temporary files (the row index of a grouped CSV, such as
    # Magento's), in a folder of its own named after the run; None: the system's.
    "TEMP_DIR": None,
    # ...and the updated items of one real run recorded with their changed fields.
    "CHANGES_MAX": 100_000,
    # Credentials of SFTP, FTP(S) and S3 sources by name (`--credentials NAME`): each a dict
    # of username, password, key_file, known_hosts (SFTP host keys, checked), endpoint_url,
    # region, access_key, secret_key (S3; else the AWS environment), verify (False, or a CA
    # bundle's path, for TLS). Never printed nor stored.
    "CREDENTIALS": {},
    # Feeds kept in the database (productsync.models.Feed):
    # host names and networks that outgoing requests (feeds entered in the admin, images,
    # webhooks) may reach although private or loopback ("erp.internal", "10.1.0.0/16");
    # IMAGE_ALLOW_PRIVATE is an older name for the images' share of it;
    "ALLOW_PRIVATE": [],
    # the key of the HMAC-SHA256 signature of alert webhooks (X-Productsync-Signature); None
    # sends them unsigned;
    "WEBHOOK_SECRET": None,
    # seconds an alert webhook's POST may take in all, retries included;
    "WEBHOOK_TIMEOUT": 10,
    # the site's base URL ("https://shop.example"), for links to run pages in alerts and in
    # push answers; None: push answers use the request's host, alerts give paths;
    "BASE_URL": None,
    # minutes between two checks for overdue feeds (a django-q2 schedule, while any feed
    # has overdue_after).
    "OVERDUE_CHECK_MINUTES": 5,
}

# The largest value of each numeric setting that the checks accept: what fits where it is
# used (PostgreSQL's lock_timeout is a 32-bit count of milliseconds, datetime arithmetic
# ends at year 1, socket timeouts at a C timeval) with room to spare.
LIMITS: dict[str, int] = {
    "LOCK_TIMEOUT": 2_147_483,  # seconds: (2**31 - 1) milliseconds
    "STALE_AFTER": 10**9,  # seconds (about 31 years)
    "KEEP_DAYS": 36_500,
    "HTTP_TIMEOUT": 86_400,  # seconds, each of (connect, read)
    "IMAGE_TIMEOUT": 86_400,
    "HTTP_RETRIES": 100,
    "HTTP_BACKOFF": 3_600,
    "BATCH_ATTEMPTS": 1_000,
    "IMAGE_MAX_BYTES": 2**30,
    "MAX_ITEM_BYTES": 2**30,
    "MAX_TEXT_LENGTH": 2**30,
    "WEBHOOK_TIMEOUT": 3_600,
    "OVERDUE_CHECK_MINUTES": 1_440,
}
# ...and the smallest of the bounds on inputs: a line must hold a product.
MINIMUMS: dict[str, int] = {"MAX_ITEM_BYTES": 1024, "MAX_TEXT_LENGTH": 256}

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


_FAILURE_LIMIT = re.compile(r"([0-9]{1,9})(%?)")


def failures_limit(value: Any) -> tuple[int, bool] | None:
    """A failure limit (a whole number of items, or a percentage of the items read up to
    100%, "10%") as (number, whether a percentage); None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    match = _FAILURE_LIMIT.fullmatch(str(value).strip())
    if match is None or (match[2] and int(match[1]) > 100):
        return None
    return int(match[1]), bool(match[2])


def batch_size_allowed(size: int) -> bool:
    """Whether a run may use batches of size items (the one check of the bound)."""
    return 1 <= size <= MAX_BATCH_SIZE
