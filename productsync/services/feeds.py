"""Feeds kept in the database: their django-q2 schedules kept in step, the run a feed makes,
push tokens, and files pushed to a feed."""

import dataclasses
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import tempfile
from typing import BinaryIO
from urllib.parse import urlsplit

from django.core.files.base import ContentFile, File
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from productsync.conf import app_settings
from productsync.exceptions import ProductSyncError
from productsync.feeds import feed_open
from productsync.http import webhook_guard
from productsync.models import Feed, SyncRun
from productsync.services.queue import task_enqueue
from productsync.services.run import run_spec_execute
from productsync.services.spec import RunSpec, run_spec_build
from productsync.services.upload import upload_path, upload_storage, upload_store

logger = logging.getLogger(__name__)

FEED_TASK = "productsync.tasks.feed_sync"
OVERDUE_TASK = "productsync.tasks.feeds_overdue"
# Schedule names: one per scheduled feed, and the check for overdue feeds.
SCHEDULE_PREFIX = "productsync.feed."
OVERDUE_SCHEDULE = "productsync.feeds_overdue"
MAPPING_DIR = "productsync/feeds"
PUSH_CHUNK = 1 << 16


class PushTooLargeError(ProductSyncError):
    """A pushed file over PRODUCTSYNC['UPLOAD_MAX_BYTES']."""


def feed_find(feed: int | str) -> Feed | None:
    """The feed of an id or a name, or None."""
    if isinstance(feed, int) or (isinstance(feed, str) and feed.isdigit()):
        found = Feed.objects.filter(pk=int(feed)).first()
        if found is not None:
            return found
    return Feed.objects.filter(name=str(feed)).first()


def feed_schedule_name(feed: Feed) -> str:
    return f"{SCHEDULE_PREFIX}{feed.name}"


def feed_schedules_apply() -> None:
    """Make the django-q2 schedules match the feeds: exactly one schedule (running
    productsync.tasks.feed_sync with the feed's id) per enabled feed with a cron, none for
    any other (a renamed, disabled, unscheduled or deleted feed), and the overdue check
    while a feed has overdue_after. Runs in the caller's transaction."""
    wanted = {
        feed_schedule_name(feed): feed
        for feed in Feed.objects.filter(enabled=True).exclude(schedule="")
    }
    Schedule.objects.filter(func=FEED_TASK).exclude(name__in=list(wanted)).delete()
    for name, feed in wanted.items():
        _schedule_put(name, FEED_TASK, f"({feed.pk},)", cron=feed.schedule)
    overdue = Feed.objects.filter(enabled=True, overdue_after__isnull=False).exists()
    if overdue:
        _schedule_put(
            OVERDUE_SCHEDULE, OVERDUE_TASK, "", minutes=app_settings.OVERDUE_CHECK_MINUTES
        )
    else:
        Schedule.objects.filter(name=OVERDUE_SCHEDULE).delete()


def _schedule_put(name: str, func: str, args: str, cron: str = "", minutes: int = 0) -> None:
    """Create or change one schedule; one that is as wanted is left alone (its next run
    kept)."""
    kind = Schedule.CRON if cron else Schedule.MINUTES
    wanted = {"func": func, "args": args, "schedule_type": kind, "cron": cron or None}
    if minutes:
        wanted["minutes"] = minutes
    current = Schedule.objects.filter(name=name).first()
    if current and all(getattr(current, key) == value for key, value in wanted.items()):
        return
    schedule, created = Schedule.objects.update_or_create(
        name=name, defaults={**wanted, "repeats": -1}
    )
    if not created:
        # Schedule.save() computes next_run from the cron only for a new schedule.
        schedule.next_run = schedule.calculate_next_run() if cron else timezone.now()
        schedule.save(update_fields=["next_run"])


def feed_next_runs() -> dict[str, object]:
    """Each scheduled feed's next run, by feed name (one query)."""
    rows = Schedule.objects.filter(func=FEED_TASK).values_list("name", "next_run")
    return {name.removeprefix(SCHEDULE_PREFIX): when for name, when in rows}


def feed_mapping_path(feed: Feed) -> str | None:
    """A local path of the feed's stored mapping, as the readers take it: a file in storage
    named by the digest of the text (so a run reads the mapping the feed had when it
    started)."""
    if not feed.mapping.strip():
        return None
    text = feed.mapping.encode()
    try:
        json.loads(text)
        extension = "json"
    except ValueError:
        extension = "toml"
    name = f"{MAPPING_DIR}/mapping-{hashlib.sha256(text).hexdigest()[:24]}.{extension}"
    storage = upload_storage()  # kept with uploaded feeds, outside the served media
    if not storage.exists(name):
        name = storage.save(name, ContentFile(text))
    return storage.path(name)


def feed_run_spec(
    feed: Feed, *, trigger: str, upload: dict | None = None, queued_as: str = "", **options
) -> RunSpec:
    """The run a feed makes, the same whoever starts it (its schedule, the command, the
    admin, a push): its source, reader, kind, batch size and hiding. options are run_spec_build's
    (dry_run, limit, full, diff, workers, allow_mass_change). upload: a pushed file (storage
    name, SHA-256, file name) read instead of the source, under the same name (lease and
    history)."""
    # A stock file is a CSV whatever its name (a pushed file has none to tell).
    fmt = feed.format or ("csv" if feed.kind == Feed.Kind.STOCK else None)
    feed_options = {"format": fmt, "preset": feed.preset or None}
    feed_options["mapping"] = feed_mapping_path(feed)
    feed_options["sheet"] = feed.sheet or None
    if upload is None:
        feed_options["credentials"] = feed.credentials or None
        feed_options["archive_to"] = feed.archive_to or None
    if feed.kind != Feed.Kind.CATALOGUE and feed.partner:
        feed_options["partner"] = feed.partner
    record = {"feed_id": feed.pk, "queued_as": queued_as}
    if upload is not None:
        record.update(
            upload=upload["name"],
            upload_name=upload["filename"],
            upload_sha256=upload["sha256"],
        )
        if upload.get("run_id"):
            record["queued_run"] = upload["run_id"]
    if not feed.source and upload is None:
        raise ProductSyncError(f"feed {feed.name} has no source: files are pushed to it")
    # A deliberate repricing lets a mass change through once, or the feed always does.
    options["allow_mass_change"] = options.get("allow_mass_change") or feed.allow_mass_change
    spec = run_spec_build(
        feed.source or feed_push_key(feed),
        batch_size=feed.batch_size,
        trigger=trigger,
        feed_options={k: v for k, v in feed_options.items() if v is not None},
        hide_missing=feed.hide_missing,
        kind=feed.kind,
        only=feed.only,
        stock_authoritative=feed.stock_authoritative or None,  # else the setting's
        max_failures=feed.max_failures.strip() or None,
        record=record,
        **{**options, "owns": options.get("owns") or feed.owns or None},
    )
    if upload is None:
        return spec
    path = upload_path(upload["name"])
    source = spec.source if feed.source else feed_push_key(feed)
    return dataclasses.replace(
        spec, source=source, open_feed=lambda _source: feed_open(path, options=spec.feed)
    )


def feed_push_key(feed: Feed) -> str:
    """The run source (lease, history) of files pushed to a feed that has no source."""
    return f"push:{feed.name}"


def feed_run_execute(
    feed: int | str,
    *,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    upload: dict | None = None,
    on_start=None,
    on_batch=None,
    **options,
) -> int | None:
    """Run a feed (by id or name) and return the run's id; None when the feed is gone or
    (unless the command names it) disabled, and a queued pushed run is then ended failed."""
    found = feed_find(feed)
    if found is None or (not found.enabled and trigger != SyncRun.Trigger.COMMAND):
        reason = f"feed {feed} is {'disabled' if found else 'gone'}: nothing was synced"
        logger.warning("%s", reason)
        if upload and upload.get("run_id"):
            feed_queued_fail(upload["run_id"], reason)
        return None
    spec = feed_run_spec(found, trigger=trigger, upload=upload, **options)
    return run_spec_execute(spec, on_start=on_start, on_batch=on_batch).pk


def feed_sync_enqueue(feed: Feed, *, dry_run: bool = False, trigger: str = SyncRun.Trigger.ADMIN):
    """Queue a run (or a preview: dry_run, with each item's changes) of the feed as its
    schedule makes it; return the task id and the queue state (QueueError: no cluster)."""
    if not feed.source:
        raise ProductSyncError(f"feed {feed.name} has no source: files are pushed to it")
    return task_enqueue(
        FEED_TASK,
        feed.pk,
        trigger=trigger,
        dry_run=dry_run,
        task_name=f"productsync {'preview' if dry_run else 'sync'} of feed {feed.name}",
    )


def feed_token_rotate(feed: Feed) -> str:
    """A new push token for the feed, replacing any earlier one; only its digest is kept,
    so the token is returned to be shown once."""
    token = secrets.token_urlsafe(32)
    Feed.objects.filter(pk=feed.pk).update(push_token=_token_digest(token))
    feed.push_token = _token_digest(token)
    return token


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_token_valid(feed: Feed, token: str) -> bool:
    """Whether token is the feed's push token (compared in constant time)."""
    if not feed.push_token or not token:
        return False
    return hmac.compare_digest(feed.push_token, _token_digest(token))


def feed_push(feed: Feed, body: BinaryIO, filename: str = "") -> SyncRun:
    """Store a pushed file (streamed, refused past UPLOAD_MAX_BYTES with PushTooLargeError)
    and queue a run of the feed with it: the run is recorded `queued` now, so its id can be
    answered, and started by a django-q2 worker (QueueError when no cluster runs)."""
    limit = app_settings.UPLOAD_MAX_BYTES
    with tempfile.TemporaryFile() as spool:
        while chunk := body.read(PUSH_CHUNK):
            spool.write(chunk)
            if spool.tell() > limit:
                raise PushTooLargeError(f"the file is larger than the limit of {limit} bytes")
        spool.seek(0)
        name = os.path.basename(filename) or os.path.basename(feed.source.split("?")[0]) or "feed"
        stored = upload_store(File(spool, name=name), name)
    upload = {"name": stored.name, "sha256": stored.sha256, "filename": stored.filename}
    spec = feed_run_spec(feed, trigger=SyncRun.Trigger.PUSH, upload=upload)
    run = SyncRun.objects.create(
        source=spec.source,
        feed=feed,
        trigger=SyncRun.Trigger.PUSH,
        status=SyncRun.Status.QUEUED,
        batch_size=spec.batch_size,
        partial=spec.mode.partial,
        upload=stored.name,
        upload_name=stored.filename,
        upload_sha256=stored.sha256,
    )
    try:
        task_enqueue(
            FEED_TASK,
            feed.pk,
            trigger=SyncRun.Trigger.PUSH,
            upload={**upload, "run_id": run.pk},
            task_name=f"productsync push to feed {feed.name} (run {run.pk})",
        )
    except ProductSyncError as exc:
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        raise
    return run


def feed_queued_fail(run_id: int, reason: str) -> None:
    """End a queued run that will not start (its feed was deleted or disabled)."""
    SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.FAILED, error=reason, finished_at=timezone.now()
    )


def url_host_allowed(url: str) -> bool:
    """Whether every address url's host resolves to is public or allowed by ALLOW_PRIVATE:
    for a URL entered in the admin, checked when it is saved (a host that does not resolve
    is let through here: it fails when used)."""
    try:
        parts = urlsplit(url)
        infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, type=socket.SOCK_STREAM)
    except (ValueError, OSError, UnicodeError):
        return True
    guard = webhook_guard()
    return all(guard.address_allowed(parts.hostname or "", info[4][0]) for info in infos)


def feeds_save_atomic(feeds: list[Feed], keep: set[str] | None = None) -> list[str]:
    """Save these feeds (created or changed) in one transaction; with keep (names), delete
    every feed not named there. Return the names deleted."""
    with transaction.atomic():
        for feed in feeds:
            feed.save()
        if keep is None:
            return []
        stale = list(Feed.objects.exclude(name__in=list(keep)))
        for feed in stale:
            feed.delete()
        return [feed.name for feed in stale]
