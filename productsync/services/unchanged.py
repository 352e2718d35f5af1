"""The unchanged-feed skip: a local file's digest, the catalogue's state, HTTP validators."""

import hashlib
import importlib.metadata
import json
import os
import stat
from datetime import datetime
from typing import NamedTuple

from django.db.models import Count, F, Max

from productsync.conf import app_settings
from productsync.feeds import is_remote, is_url, mapping_path, remote_fingerprint
from productsync.models import SyncedProduct, SyncRun
from productsync.records import FINGERPRINT_VERSION, default_currency
from productsync.services.history import run_finish
from productsync.services.lease import Status
from productsync.services.spec import RunSpec
from productsync.writer import edits_in_source, html_policy

# Settings that change what a run writes: a feed file synced under others is read again.
DIGESTED_SETTINGS = (
    "CREATE_ATTRIBUTES",
    "CREATE_ATTRIBUTE_OPTIONS",
    "HIDE_MISSING_MAX_FRACTION",
    "FETCH_IMAGES",
)


def spec_feed_digest(spec: RunSpec) -> str:
    """SHA-256 of a local feed file's bytes (of a remote file's fingerprint: its size and
    modification time, or its ETag) and of what else decides what a run of it writes (feed
    options, mapping file, settings, productsync's version); '' for a URL, or a file that
    cannot be read (opening it reports why). A remote source that cannot be reached raises
    SourceError."""
    source, options = spec.source, spec.feed
    if is_url(source):
        return ""
    try:
        if is_remote(source):
            fingerprint = remote_fingerprint(source, options.credentials, options.username)
            digest = hashlib.sha256(fingerprint.encode())
        else:
            with open(source, "rb") as feed:
                if not stat.S_ISREG(os.fstat(feed.fileno()).st_mode):
                    return ""
                digest = hashlib.file_digest(feed, "sha256")
        mapping_file = mapping_path(options)
        if mapping_file:
            with open(mapping_file, "rb") as mapping:
                digest.update(hashlib.file_digest(mapping, "sha256").digest())
    except OSError:
        return ""
    context = {
        "options": [options.format, options.delimiter, options.encoding],
        "hide_missing": spec.hide_missing,
        "settings": {key: getattr(app_settings, key) for key in DIGESTED_SETTINGS},
        "currency": default_currency(),
        "html": html_policy(),
        "version": _version(),
        "fingerprint": FINGERPRINT_VERSION,
        **({"owns": list(spec.mode.owns)} if spec.mode.owns else {}),
    }
    digest.update(json.dumps(context, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _version() -> str:
    try:
        return importlib.metadata.version("productsync")
    except importlib.metadata.PackageNotFoundError:  # the app copied into a project
        return ""


class CatalogueState(NamedTuple):
    """The source's synced products: the run that last read their feed, how many there are,
    and when one of them last changed (any edit, hiding or deletion moves it)."""

    run: int | None
    count: int | None
    changed: datetime | None


def _catalogue_state(source: str, reading_run: int) -> CatalogueState:
    state = SyncedProduct.objects.filter(source=source).aggregate(
        count=Count("pk"), changed=Max("product__date_updated")
    )
    return CatalogueState(reading_run, state["count"], state["changed"])


def catalogue_state_store(run: SyncRun) -> None:
    """Store the catalogue's state after the run, with the run's feed digest."""
    run.state_run, run.state_count, run.state_changed = _catalogue_state(run.source, run.pk)
    run.save(update_fields=["feed_digest", "state_run", "state_count", "state_changed"])


def run_skip_unchanged(run: SyncRun, digest: str) -> bool:
    """Finish the run at once when the source's last run read the same file (digest) and
    succeeded, and neither the source's products nor the items that run saw changed since:
    reading the feed again would find every item unchanged."""
    last = (
        SyncRun.objects.filter(source=run.source, dry_run=False)
        .exclude(pk=run.pk)
        .exclude(status=Status.SKIPPED)
        .order_by("-started_at", "-pk")
        .values_list(
            "pk", "status", "feed_digest", "state_run", "state_count", "state_changed", named=True
        )
        .first()
    )
    if last is None or last.status != Status.SUCCEEDED or last.feed_digest != digest:
        return False
    state = CatalogueState(last.state_run, last.state_count, last.state_changed)
    if state.run is None or _catalogue_state(run.source, state.run) != state:
        return False
    # An edit made while that run was going, after it had written the item, is newer than
    # the item's sync: a full read would write the item again.
    if SyncedProduct.objects.filter(
        source=run.source, last_run_id=state.run, product__date_updated__gt=F("synced_at")
    ).exists():
        return False
    # Someone changed a product (a stock record, attribute value or category link, which
    # leave its date_updated alone): the run must read the feed to repair it.
    if edits_in_source(run.source, state.run):
        return False
    run.feed_digest = digest
    run.state_run, run.state_count, run.state_changed = state
    run.notes.append(
        f"the feed file is unchanged since run {last.pk} and so are the source's products: "
        "nothing to write (a full run reads every item anyway)"
    )
    run.save(update_fields=["feed_digest", "state_run", "state_count", "state_changed", "notes"])
    run_finish(run, "")
    return True


def http_validators(source: str, run: SyncRun) -> tuple[str, str]:
    """ETag and Last-Modified of the last successful non-dry run of this URL."""
    if not is_url(source):
        return "", ""
    last = (
        SyncRun.objects.filter(source=source, status=Status.SUCCEEDED, dry_run=False)
        .exclude(pk=run.pk)
        .order_by("-started_at", "-pk")
        .values_list("http_etag", "http_last_modified")
        .first()
    )
    return last or ("", "")
