"""The run loop: batches, transactions, failure isolation, run history and the lease."""

import contextlib
import hashlib
import importlib.metadata
import itertools
import json
import logging
import os
import socket
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    connection,
    reset_queries,
    transaction,
)
from django.db.models import Count, F, Max
from django.db.utils import InterfaceError
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.models import Schedule
from django_q.tasks import async_task

from productsync.batching import batched
from productsync.conf import MAX_BATCH_SIZE, app_settings
from productsync.exceptions import (
    FeedError,
    LeaseLostError,
    ProductSyncError,
    QueueError,
    RecordError,
    RunActiveError,
    SourceError,
)
from productsync.exports import failures_jsonl
from productsync.feeds import ByteStream, Feed, FeedOptions, feed_open, is_url, jsonl_items
from productsync.models import SyncBatch, SyncedProduct, SyncFailure, SyncRun
from productsync.records import (
    KNOWN_KEYS,
    BatchResult,
    FeedItem,
    ItemFailure,
    Unparsed,
    ValidItem,
    default_currency,
    payload_dump,
    printable,
    record_fingerprint,
    record_parse,
)
from productsync.signals import batch_committed
from productsync.sql import insert_rows, update_row
from productsync.writer import (
    BatchWriter,
    ImageSync,
    catalogue_category_view_refresh,
    products_hide,
    products_missing,
)

logger = logging.getLogger(__name__)

Status = SyncRun.Status
BatchStatus = SyncBatch.Status
UNFINISHED = (BatchStatus.PENDING, BatchStatus.RUNNING)
# Seconds between two looks of a queue run's planner at its batches.
QUEUE_POLL = 0.5
OnBatch = Callable[[SyncRun, BatchResult], None]
# Errors of the connection or of locks: not the fault of one item, so the batch is retried
# whole once, not item by item.
TRANSIENT = (OperationalError, InterfaceError)
# Batch warnings (images not fetched) listed in run.notes at most; run.warnings counts all.
MAX_NOTES = 20
# Unknown keys named in one note of the run; the rest are counted.
NOTED_KEYS = 10
# Settings that change what a run writes: a feed file synced under others is read again.
DIGESTED_SETTINGS = ("CREATE_ATTRIBUTES", "CREATE_ATTRIBUTE_OPTIONS", "HIDE_MISSING_MAX_FRACTION")


def _one_line(text: str) -> str:
    """Error text (from a database driver, a parser) on one storable, printable line."""
    return printable(" ".join(str(text).split()))


def sync_run_abort_stale() -> int:
    """Mark runs whose process stopped heart-beating as aborted, releasing their lease."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=app_settings.STALE_AFTER)
    return SyncRun.objects.filter(status=Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Status.ABORTED,
        finished_at=now,
        error=f"no heartbeat for {app_settings.STALE_AFTER}s: the process is taken for dead",
    )


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sync_run_start(
    source: str,
    *,
    batch_size: int,
    dry_run: bool = False,
    trigger: str = SyncRun.Trigger.COMMAND,
    retry_of: SyncRun | None = None,
    workers: str = SyncRun.Workers.LOCAL,
    resumed_from: SyncRun | None = None,
    start_position: int = 0,
) -> SyncRun:
    """Record a new running run. A non-dry run takes the source's lease; if another run holds
    it, a skipped run is recorded and RunActiveError raised."""
    sync_run_abort_stale()
    fields = {
        "source": source,
        "batch_size": batch_size,
        "dry_run": dry_run,
        "trigger": trigger,
        "retry_of": retry_of,
        "workers": workers,
        "resumed_from": resumed_from,
        "start_position": start_position,
        "owner": _owner(),
    }
    try:
        with transaction.atomic():
            return SyncRun.objects.create(**fields)
    except IntegrityError:
        active = SyncRun.objects.filter(source=source, status=Status.RUNNING, dry_run=False).first()
        reason = f"run {active.pk if active else '?'} of this source is still running"
        if active and active.owner:
            reason += f" (in {active.owner})"
        now = timezone.now()
        skipped = SyncRun.objects.create(
            **fields, status=Status.SKIPPED, error=reason, finished_at=now
        )
        raise RunActiveError(f"Run {skipped.pk} skipped: {reason}") from None


SCHEDULE_NAME = "productsync.sync_products"


def sync_schedule_apply(using: str = "default") -> str:
    """Make the django-q2 Schedule named SCHEDULE_NAME run the sync task on the cron of
    PRODUCTSYNC['SCHEDULE'], or delete it when the setting is None; say what was done."""
    cron = app_settings.SCHEDULE
    schedules = Schedule.objects.using(using)
    if cron is None:
        deleted, _ = schedules.filter(name=SCHEDULE_NAME).delete()
        return (
            f"Schedule {SCHEDULE_NAME} deleted." if deleted else "No schedule (SCHEDULE is None)."
        )
    current = schedules.filter(name=SCHEDULE_NAME).first()
    if current and current.cron == cron and current.func == "productsync.tasks.sync_products":
        return f"Schedule {SCHEDULE_NAME} unchanged: {cron}."
    schedule, created = schedules.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "productsync.tasks.sync_products",
            "schedule_type": Schedule.CRON,
            "cron": cron,
            "repeats": -1,
        },
    )
    if not created:
        # Schedule.save() computes next_run from the cron only for a new schedule.
        schedule.next_run = schedule.calculate_next_run()
        schedule.save(update_fields=["next_run"])
    return f"Schedule {SCHEDULE_NAME} {'created' if created else 'updated'}: {cron}."


def sync_run_execute(
    source: str | None = None,
    *,
    batch_size: int | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    trigger: str = SyncRun.Trigger.COMMAND,
    hide_missing: bool | None = None,
    on_start: Callable[[SyncRun], None] | None = None,
    on_batch: OnBatch | None = None,
    feed_options: dict | None = None,
    retry_of: SyncRun | None = None,
    open_feed: Callable[[str], Feed] | None = None,
    workers: str | None = None,
    resume: int | None = None,
    full: bool = False,
) -> SyncRun:
    """Sync a feed into the catalogue, one transaction per batch, and record the run.

    feed_options are FeedOptions fields (format, delimiter, encoding, mapping). workers
    "queue" (default PRODUCTSYNC['WORKERS']) makes this process the planner of the run:
    django-q2 workers write its batches. resume is the id of an aborted or failed run to
    continue: the new run, linked to it, reads the same source from its first uncommitted
    batch. open_feed, when given, turns the source into a Feed instead of reading it (a
    retry reads failed items, under the source's lease). With hide_missing (default
    PRODUCTSYNC['HIDE_MISSING']) a complete run hides the source's products it did not see.

    Raises SourceError when the feed cannot be opened and RunActiveError when another run of
    the source is active; both after recording the run. Any other failure ends the run
    `failed` with the reason; batches committed before it stay. Unless full: an HTTP source
    unchanged since the last successful run (304), or a local file whose bytes and settings
    are those of the source's last run, which succeeded, while none of the source's products
    changed since, ends at once `succeeded` with 0 items and a note."""
    workers = workers or app_settings.WORKERS
    resumed_from, start = None, 0
    if resume is not None:
        resumed_from, start = _resume_point(resume, source)
        source, batch_size = resumed_from.source, batch_size or resumed_from.batch_size
    source = source or app_settings.SOURCE
    if hide_missing is None:
        hide_missing = app_settings.HIDE_MISSING
    batch_size = batch_size or app_settings.BATCH_SIZE
    if not source:
        raise SourceError("no source given and PRODUCTSYNC['SOURCE'] is not set")
    if not 1 <= batch_size <= MAX_BATCH_SIZE or (limit is not None and limit < 0):
        raise ProductSyncError(
            f"batch size must be from 1 to {MAX_BATCH_SIZE} and limit at least 0"
        )
    if workers not in SyncRun.Workers.values:
        raise ProductSyncError(f"workers must be one of {', '.join(SyncRun.Workers.values)}")
    if dry_run and workers == SyncRun.Workers.QUEUE:
        raise ProductSyncError("a dry run is local: it cannot use --workers queue")
    try:
        options = FeedOptions(**(feed_options or {}))
    except TypeError as exc:
        raise ProductSyncError(f"bad feed options: {exc}") from None
    try:
        run = sync_run_start(
            source,
            batch_size=batch_size,
            dry_run=dry_run,
            trigger=trigger,
            retry_of=retry_of,
            workers=workers,
            resumed_from=resumed_from,
            start_position=start,
        )
    except DatabaseError as exc:
        raise ProductSyncError(
            f"the database refused to record the run: {_one_line(exc)}"
        ) from None
    whole_file = not (dry_run or open_feed or limit is not None or resume is not None)
    try:
        digest = ""
        if whole_file and workers == SyncRun.Workers.LOCAL:
            digest = _feed_digest(source, options, hide_missing)
        if digest and not full and _run_skip_unchanged(run, digest):
            return run
        run.feed_digest = digest  # kept if the run succeeds without an image left to fetch
        error = _run_feed(run, options, open_feed, limit, dry_run, on_start, on_batch, full)
    except SourceError as exc:
        _finish(run, str(exc))
        raise
    except Exception as exc:
        if run.status == Status.RUNNING:
            # A bug, not bad input: end the run so its lease is released, and let it surface.
            _finish(run, f"unexpected error: {exc!r}")
        raise
    if error is None:
        return run  # an unchanged HTTP source: finished already
    if not dry_run:
        # Also after an early stop: the batches committed before it changed the catalogue.
        refresh_error = _catalogue_refresh(run)
        error = error or refresh_error
    if hide_missing:
        try:
            _hide_missing(run, error, limit)
        except DatabaseError as exc:
            error = error or f"hiding the products missing from the feed failed: {exc}"
    if workers == SyncRun.Workers.QUEUE:
        if error != run.error:
            run.error = error
            run.save(update_fields=["error"])
    else:
        _finish(run, error)
        if run.feed_digest and run.status == Status.SUCCEEDED:
            run.catalogue_state = _catalogue_state(run.source, run.pk)
            run.save(update_fields=["feed_digest", "catalogue_state"])
    return run


def _feed_digest(source: str, options: FeedOptions, hide_missing: bool) -> str:
    """SHA-256 of a local feed file's bytes and of what else decides what a run of it writes
    (feed options, mapping file, settings, productsync's version); '' for a URL, or a file
    that cannot be read (opening it reports why)."""
    if is_url(source):
        return ""
    try:
        with open(source, "rb") as feed:
            if not stat.S_ISREG(os.fstat(feed.fileno()).st_mode):
                return ""
            digest = hashlib.file_digest(feed, "sha256")
        if options.mapping:
            with open(options.mapping, "rb") as mapping:
                digest.update(hashlib.file_digest(mapping, "sha256").digest())
    except OSError:
        return ""
    context = {
        "options": [options.format, options.delimiter, options.encoding],
        "hide_missing": hide_missing,
        "settings": {key: getattr(app_settings, key) for key in DIGESTED_SETTINGS},
        "currency": default_currency(),
        "version": _version(),
    }
    digest.update(json.dumps(context, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _version() -> str:
    try:
        return importlib.metadata.version("productsync")
    except importlib.metadata.PackageNotFoundError:  # the app copied into a project
        return ""


def _catalogue_state(source: str, reading_run: int) -> str:
    """The source's synced products in one line: the run that last read their feed, how many
    there are, and when one of them last changed (any edit, hiding or deletion moves it)."""
    state = SyncedProduct.objects.filter(source=source).aggregate(
        count=Count("pk"), changed=Max("product__date_updated")
    )
    changed = state["changed"].isoformat() if state["changed"] else ""
    return f"{reading_run} {state['count']} {changed}"


def _run_skip_unchanged(run: SyncRun, digest: str) -> bool:
    """Finish the run at once when the source's last run read the same file (digest) and
    succeeded, and neither the source's products nor the items that run saw changed since:
    reading the feed again would find every item unchanged."""
    last = (
        SyncRun.objects.filter(source=run.source, dry_run=False)
        .exclude(pk=run.pk)
        .exclude(status=Status.SKIPPED)
        .order_by("-started_at", "-pk")
        .values_list("pk", "status", "feed_digest", "catalogue_state")
        .first()
    )
    if last is None or last[1] != Status.SUCCEEDED or last[2] != digest:
        return False
    reading_run = int(last[3].split(" ", 1)[0])
    if _catalogue_state(run.source, reading_run) != last[3]:
        return False
    # An edit made while that run was going, after it had written the item, is newer than
    # the item's sync: a full read would write the item again.
    if SyncedProduct.objects.filter(
        source=run.source, last_run_id=reading_run, product__date_updated__gt=F("synced_at")
    ).exists():
        return False
    run.feed_digest, run.catalogue_state = digest, last[3]
    run.notes.append(
        f"the feed file is unchanged since run {last[0]} and so are the source's products: "
        "nothing to write (--full reads every item anyway)"
    )
    run.save(update_fields=["feed_digest", "catalogue_state", "notes"])
    _finish(run, "")
    return True


def _run_feed(
    run: SyncRun, options, open_feed, limit, dry_run, on_start, on_batch, full=False
) -> str | None:
    """Open the run's source and sync it; return the error that stopped it early, or '', or
    None when an HTTP source is unchanged since the last successful run (the run is finished;
    never when full). A queue run returns once its last batch reported."""
    source, start = run.source, run.start_position
    if open_feed is not None:
        feed = open_feed(source)
    else:
        validators = ("", "") if full else _http_validators(source, run)
        feed = feed_open(source, options=options, validators=validators)
    if open_feed is None and is_url(source) and limit is None:
        # A run cut short by --limit must not let the next run skip the rest as unchanged.
        run.http_etag, run.http_last_modified = feed.etag[:1000], feed.last_modified[:100]
        run.save(update_fields=["http_etag", "http_last_modified"])
    if feed.not_modified:
        feed.close()
        run.notes.append("the source is unchanged since the last successful run (HTTP 304)")
        run.save(update_fields=["notes"])
        _finish(run, "")
        return None
    with feed:
        left = None if feed.total_items is None else max(feed.total_items - start, 0)
        run.total_items = left if limit is None else min(limit, left if left is not None else limit)
        run.bytes_total = feed.bytes_total
        run.heartbeat_at = timezone.now()  # counting a large feed takes a while
        run.save(update_fields=["total_items", "bytes_total", "heartbeat_at"])
        if on_start:
            on_start(run)
        stop = None if limit is None else min(start + limit, sys.maxsize)
        items = iter(feed) if start == 0 and stop is None else itertools.islice(feed, start, stop)
        with _lock_timeouts():
            if run.workers != SyncRun.Workers.QUEUE:
                return _run_batches(run, items, dry_run, on_batch, lambda: feed.bytes_read)
            watch = _run_plan(run, items, on_batch, lambda: feed.bytes_read)
    _run_wait(run, watch)  # the batch that reports last finishes the run
    return run.error


def _http_validators(source: str, run: SyncRun) -> tuple[str, str]:
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


def _catalogue_refresh(run: SyncRun) -> str:
    """Oscar's category materialised view, refreshed once per run (bulk writes skip the
    per-row signal that refreshes it); return an error for the run, or ''."""
    if not (run.created or run.updated):
        return ""
    try:
        catalogue_category_view_refresh()
    except DatabaseError as exc:
        return f"refreshing the category materialised view failed: {exc}"
    return ""


def _hide_missing(run: SyncRun, error: str, limit: int | None) -> None:
    """Hide the products of the source this run did not see, if the run saw the whole feed
    and would not hide too many; otherwise note on the run why nothing was hidden."""
    why_not = ""
    if error:
        why_not = "the run did not read the whole feed"
    elif limit is not None:
        why_not = "--limit read only part of the feed"
    elif run.dry_run:
        why_not = "this is a dry run"
    elif SyncFailure.objects.filter(run=run, upc="").exists():
        why_not = "some failed items have no readable upc, so their products are unknown"
    if why_not:
        run.notes.append(f"hide-missing: nothing hidden because {why_not}")
        run.save(update_fields=["notes"])
        return
    failed_upcs = SyncFailure.objects.filter(run=run).values_list("upc", flat=True)
    ids = products_missing(run.source, run.pk, failed_upcs)
    total = SyncedProduct.objects.filter(source=run.source).count()
    limit_fraction = app_settings.HIDE_MISSING_MAX_FRACTION
    if ids and len(ids) > limit_fraction * total:
        run.notes.append(
            f"hide-missing: nothing hidden because {len(ids)} of the source's {total} products "
            f"({len(ids) / total:.0%}) are missing from the feed, more than "
            f"PRODUCTSYNC['HIDE_MISSING_MAX_FRACTION'] ({limit_fraction:.0%})"
        )
        run.save(update_fields=["notes"])
        return
    products_hide(ids)
    run.hidden += len(ids)
    run.notes.append(f"hide-missing: {len(ids)} products missing from the feed hidden")
    run.save(update_fields=["hidden", "notes"])


def _resume_point(run_id: int, source: str | None) -> tuple[SyncRun, int]:
    """The run to resume and the feed position of its first uncommitted batch."""
    sync_run_abort_stale()
    old = SyncRun.objects.filter(pk=run_id).first()
    if old is None:
        raise ProductSyncError(f"run {run_id} does not exist")
    if old.status not in (Status.ABORTED, Status.FAILED) or old.dry_run:
        raise ProductSyncError(
            f"run {run_id} is {'a dry run' if old.dry_run else old.status}: only an aborted "
            "or failed run can be resumed"
        )
    if source and source != old.source:
        raise ProductSyncError(f"run {run_id} read {old.source}, not {source}")
    later = old.resumed_by.exclude(status=Status.SKIPPED).first()
    if later is not None:
        raise ProductSyncError(f"run {run_id} was already resumed by run {later.pk}")
    position = old.start_position
    # Local runs record batches in feed order once committed; a queue run also has batches
    # still pending or running, and its first such batch is where the feed must be re-read.
    for first, last, status in old.batch_set.order_by("number").values_list(
        "first_position", "last_position", "status"
    ):
        if status in UNFINISHED:
            return old, first
        position = last + 1
    return old, position


def _run_batches(run: SyncRun, items: Iterable[FeedItem], dry_run, on_batch, bytes_read) -> str:
    """Process every batch; return the error that stopped the run early, or ''."""
    writer = BatchWriter(run.pk, run.source, default_currency())
    unknown_keys: set[str] = set()
    images = ImageSync(run.source)
    try:
        for number, chunk in enumerate(batched(items, run.batch_size), start=1):
            result, batch = _batch_commit(
                run, writer, number, chunk, dry_run, bytes_read, unknown_keys
            )
            if not dry_run:
                # The batch is committed: a slow image server holds no transaction open.
                _run_note_warnings(run, images.sync(result.images))
                batch_committed.send(
                    sender=SyncRun, run=run, batch=batch, product_ids=result.product_ids
                )
            if not connection.force_debug_cursor:
                # With DEBUG on, Django keeps the SQL of the last 9000 queries; bulk
                # queries are large, so a long run would hold megabytes of SQL text.
                reset_queries()
            if on_batch:
                on_batch(run, result)
    except FeedError as exc:
        if run.items == 0:
            # Nothing of it could be read: the source is unusable, not broken part-way.
            raise SourceError(f"{run.source}: {exc}") from None
        return f"feed broke at item {run.start_position + run.items}: {exc}"
    except KeyboardInterrupt:
        _finish(run, "interrupted", status=Status.ABORTED)
        raise
    except LeaseLostError as exc:
        _finish(run, str(exc), status=Status.ABORTED)
        raise
    except DatabaseError as exc:
        logger.warning("run %s stopped by a database error: %s", run.pk, _one_line(exc))
        _reconnect()
        return f"database error: {exc}"
    finally:
        images.close()
    return ""


def _finish(run: SyncRun, error: str, status: str | None = None) -> None:
    if status is None:
        status = Status.FAILED if error else (Status.PARTIAL if run.failed else Status.SUCCEEDED)
    run.status = status
    run.error = _one_line(error)
    run.finished_at = timezone.now()
    try:
        run.save(update_fields=["status", "error", "finished_at"])
    except DatabaseError as exc:
        raise ProductSyncError(
            f"run {run.pk}: {run.error or status}; could not record it: {_one_line(exc)}"
        ) from None


def _reconnect() -> None:
    """Drop a connection that may be dead so the next query opens a new one (not inside a
    caller's transaction, which must end first)."""
    if not connection.in_atomic_block:
        connection.close()
        with contextlib.suppress(DatabaseError):  # the next query reports it
            _lock_timeout_set()


def _lock_timeout_set(reset: bool = False) -> None:
    """Bound how long a write waits for a lock held by someone else, for the session: one
    statement per run rather than one per transaction."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {int(app_settings.LOCK_TIMEOUT * 1000)}")
        elif connection.vendor == "postgresql":
            seconds = int(app_settings.LOCK_TIMEOUT)
            cursor.execute("RESET lock_timeout" if reset else f"SET lock_timeout = '{seconds}s'")


@contextlib.contextmanager
def _lock_timeouts():
    """The session's lock timeout while a run (or a worker's batch) writes; PostgreSQL's is
    put back afterwards, as a django-q2 worker's connection may serve other tasks next."""
    _lock_timeout_set()
    try:
        yield
    finally:
        if connection.vendor == "postgresql" and not connection.needs_rollback:
            with contextlib.suppress(DatabaseError):
                _lock_timeout_set(reset=True)


def _upc_of(payload: Any) -> str:
    upc = payload.get("upc") if isinstance(payload, dict) else None
    return printable(upc if isinstance(upc, str) else str(upc))[:255] if upc is not None else ""


def _batch_validate(chunk: list[FeedItem], result: BatchResult) -> list[ValidItem]:
    valid = []
    for item in chunk:
        try:
            record = record_parse(item.payload)
        except RecordError as exc:
            result.failures.append(
                ItemFailure(
                    item.position,
                    _upc_of(item.payload),
                    str(exc),
                    payload_dump(item.payload),
                    exc.field,
                )
            )
            continue
        unknown = item.payload.keys() - KNOWN_KEYS
        if unknown:
            result.unknown_keys.update(unknown)
            result.warnings += 1
        valid.append(ValidItem(item.position, record, record_fingerprint(record), item.payload))
    return valid


def _write(writer: BatchWriter, items, result: BatchResult, dry_run, savepoint=False) -> None:
    """Write items in the caller's transaction; in a savepoint when asked, and always on dry
    runs, which roll it back."""
    part = BatchResult(result.number, items[0].position, items[-1].position, len(items))
    with transaction.atomic(savepoint=savepoint or dry_run):
        writer.write(items, part)
        if dry_run:
            transaction.set_rollback(True)
    result.merge(part)


class _WriteRejected(Exception):
    """The database rejected a batch's bulk write; its transaction must be undone."""

    def __init__(self, error: DatabaseError) -> None:
        self.error = error


def _batch_transaction(
    writer: BatchWriter, number: int, chunk: list[FeedItem], dry_run, record=None
) -> tuple[BatchResult, Any]:
    """Process a batch in one transaction, and record(result) in it. The bulk write goes
    first, with no savepoint; if the database rejects it, the transaction is undone and the
    batch written again item by item, each in a savepoint, so only the offending items fail.
    Lock and connection errors propagate. Return the result and what record returned."""
    rejected = None
    while True:
        try:
            with transaction.atomic():
                result = _batch_process(writer, number, chunk, dry_run, rejected)
                return result, record(result) if record else None
        except _WriteRejected as exc:
            writer.forget()
            rejected = exc.error


def _batch_commit(
    run: SyncRun, writer: BatchWriter, number: int, chunk, dry_run, bytes_read, unknown_keys: set
) -> tuple[BatchResult, SyncBatch]:
    """Write a batch and record it in one transaction, so a crash leaves both or neither.
    When that transaction fails on a lock or the connection, the batch is tried once more,
    then recorded with every item failed."""
    for _attempt in range(2):
        noted = set(unknown_keys)
        try:
            return_value = _batch_transaction(
                writer,
                number,
                chunk,
                dry_run,
                lambda result, noted=noted: _batch_record(run, result, bytes_read(), noted),
            )
        except TRANSIENT as exc:
            error = exc
            logger.warning("run %s batch %s: %s; rolled back", run.pk, number, _one_line(exc))
            writer.forget()
            _reconnect()
            run.refresh_from_db()
            continue
        unknown_keys |= noted
        return return_value
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    _batch_failed(result, _batch_validate(chunk, result), error)
    return result, _batch_record(run, result, bytes_read(), unknown_keys)


def _run_note_warnings(run: SyncRun, warnings: list[str]) -> None:
    """Count warnings found after a batch committed (images not fetched) on the run."""
    if warnings:
        run.feed_digest = ""  # the next run reads the feed again, to fetch these again
        run.warnings += len(warnings)
        run.notes.extend(warnings[: max(0, MAX_NOTES - len(run.notes))])
        run.save(update_fields=["warnings", "notes"])


def _batch_failed(result: BatchResult, valid: list[ValidItem], exc: Exception) -> None:
    """Record every valid item of a batch that could not be written as failed."""
    result.error = f"the batch could not be written: {_one_line(exc)}"
    result.failures.extend(_db_failure(item, exc) for item in valid)


def _batch_process(
    writer: BatchWriter, number: int, chunk: list[FeedItem], dry_run, rejected=None
) -> BatchResult:
    """Validate and write a batch in the caller's transaction: in bulk, or item by item when
    the database rejected the bulk write (rejected: its error)."""
    started = time.perf_counter()
    result = BatchResult(number, chunk[0].position, chunk[-1].position, len(chunk))
    valid = _batch_validate(chunk, result)
    if valid and rejected is None:
        try:
            _write(writer, valid, result, dry_run)
        except TRANSIENT:
            raise
        except DatabaseError as exc:
            raise _WriteRejected(exc) from exc
    elif valid:
        result.error = f"the database rejected the batch, retried item by item: {rejected}"
        _write_each(writer, valid, result, dry_run)
    if dry_run:
        writer.forget()
    result.duration = time.perf_counter() - started
    return result


def _write_each(writer: BatchWriter, valid: list[ValidItem], result: BatchResult, dry_run) -> None:
    """Write each item in its own savepoint so only the offending ones fail."""
    with transaction.atomic(savepoint=dry_run):
        for item in valid:
            try:
                _write(writer, [item], result, dry_run=False, savepoint=True)
            except DatabaseError as exc:
                writer.forget()
                if connection.needs_rollback:
                    raise  # the connection is gone, not the item at fault
                result.failures.append(_db_failure(item, exc))
        if dry_run:
            transaction.set_rollback(True)


def _db_failure(item: ValidItem, exc: Exception) -> ItemFailure:
    message = _one_line(exc) or type(exc).__name__
    return ItemFailure(
        item.position, item.record.upc, f"the database rejected the item: {message}", item.raw()
    )


def _batch_record(
    run: SyncRun,
    result: BatchResult,
    bytes_read: int,
    unknown_keys: set,
    batch: SyncBatch | None = None,
) -> SyncBatch:
    """Store the batch (a new row, or the queued one given), its failures and the run's new
    totals in one short transaction."""
    new_keys = result.unknown_keys - unknown_keys
    unknown_keys |= new_keys
    with transaction.atomic(savepoint=False):
        values = {
            "first_position": result.first_position,
            "last_position": result.last_position,
            "status": result.status,
            **{name: getattr(result, name) for name in SyncBatch.COUNTERS},
            "duration": result.duration,
            "error": result.error,
            "finished_at": timezone.now(),
            "payload": None,
        }
        if batch is None:
            # Through the driver: the ORM's save() costs more than the insert at 15 items.
            batch = SyncBatch(run=run, number=result.number, **values)
            [batch.pk] = insert_rows(
                SyncBatch,
                ["run_id", "number", *values],
                [(run.pk, result.number, *values.values())],
                returning="id",
            )
            batch._state.adding = False
        else:
            for name, value in values.items():
                setattr(batch, name, value)
            batch.save()
        SyncFailure.objects.bulk_create(
            SyncFailure(
                run=run,
                batch=batch,
                position=f.position,
                upc=f.upc[:255],
                field=f.field[:255],
                message=f.message,
                raw_payload=f.raw_payload,
            )
            for f in result.failures
        )
        run.items += result.items
        run.created += result.created
        run.updated += result.updated
        run.unchanged += result.unchanged
        run.failed += result.failed
        run.hidden += result.hidden
        run.batches += 1
        run.failed_batches += bool(result.failures)
        run.warnings += result.warnings
        if new_keys:
            names = sorted(printable(key)[:60] for key in new_keys)
            more = f" and {len(names) - NOTED_KEYS} more" if len(names) > NOTED_KEYS else ""
            run.notes.append(f"unknown keys ignored: {', '.join(names[:NOTED_KEYS])}{more}")
        run.notes.extend(result.notes[: max(0, MAX_NOTES - len(run.notes))])
        run.bytes_read = bytes_read
        run.heartbeat_at = timezone.now()
        _run_save_if_running(run, [*SyncRun.COUNTERS, "notes", "bytes_read", "heartbeat_at"])
    return batch


def sync_run_retry(run_id: int, *, trigger: str = SyncRun.Trigger.ADMIN) -> SyncRun:
    """Run again exactly the failed items of a finished run, as a new run linked to it.

    The feed is the run's failures as JSON Lines (the same file the admin offers for
    download), built from the failure rows so a worker on any machine can run it. The new
    run keeps the original's source (and so its lease), batch size and dry-run flag."""
    original = SyncRun.objects.get(pk=run_id)
    if original.status == Status.RUNNING:
        raise ProductSyncError(f"run {run_id} is still running: retry it when it has finished")
    count = SyncFailure.objects.filter(run=original).count()
    if not count:
        raise ProductSyncError(f"run {run_id} has no failed items to retry")

    def open_failures(source: str) -> Feed:
        lines = (line.encode() for line in failures_jsonl(original.pk))
        return Feed(
            f"failures of run {run_id}", ByteStream.of_chunks(lines), jsonl_items, total_items=count
        )

    return sync_run_execute(
        original.source,
        batch_size=original.batch_size,
        dry_run=original.dry_run,
        trigger=trigger,
        retry_of=original,
        open_feed=open_failures,
    )


def sync_run_prune(keep_days: int) -> int:
    """Delete finished runs (with their batches and failures) that started more than keep_days
    days ago; return how many runs were deleted. Running runs are kept."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    old = SyncRun.objects.filter(started_at__lt=cutoff).exclude(status=Status.RUNNING)
    _, deleted = old.delete()
    return deleted.get(SyncRun._meta.label, 0)


def sync_queue_state() -> str:
    """Whether a django-q2 cluster is up to take queued syncs: "running", "stopped", or
    "unknown" when django-q2 keeps cluster status in a cache private to each process
    (LocMemCache) or in none, so this process cannot see the cluster."""
    from django.core.cache import InvalidCacheBackendError, caches
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache
    from django_q.brokers import Broker, get_broker
    from django_q.conf import Conf
    from django_q.status import Stat

    if Conf.SYNC:
        return "running"  # django-q2 runs tasks inline, in this process
    broker = get_broker()
    # The Redis broker keeps cluster status in Redis; the others in a Django cache.
    if type(broker).get_stats is Broker.get_stats:
        try:
            cache = caches[Conf.CACHE]
        except InvalidCacheBackendError:
            return "unknown"
        if isinstance(cache, LocMemCache | DummyCache):
            return "unknown"
    try:
        stats = Stat.get_all(broker)
    except Exception as exc:  # e.g. Redis down, a DatabaseCache table never created
        logger.warning("cannot read django-q2 cluster status: %s", exc)
        return "unknown"
    alive = [s for s in stats if s.status not in (Conf.STOPPED, Conf.STOPPING)]
    return "running" if alive else "stopped"


def _enqueue(func: str, *args: Any, **kwargs: Any) -> tuple[str, str]:
    from django_q.tasks import async_task

    state = sync_queue_state()
    if state == "stopped":
        raise QueueError(
            "no django-q2 cluster is running, so nothing would run the sync: "
            "start one with `python manage.py qcluster`"
        )
    try:
        return async_task(func, *args, **kwargs), state
    except Exception as exc:  # the broker refused: Redis down, a database error
        raise QueueError(f"the django-q2 broker refused the task: {exc}") from exc


def sync_run_enqueue(*, dry_run: bool = False) -> tuple[str, str]:
    """Queue a sync of PRODUCTSYNC's source and batch size (trigger `admin`) for the
    django-q2 cluster; return the task id and the queue state. Raises QueueError when no
    cluster is running."""
    return _enqueue(
        "productsync.tasks.sync_products",
        app_settings.SOURCE,
        app_settings.BATCH_SIZE,
        dry_run,
        trigger=SyncRun.Trigger.ADMIN,
        task_name=f"productsync {'dry run' if dry_run else 'sync'} from the admin",
    )


def sync_run_enqueue_retry(run_id: int) -> tuple[str, str]:
    """Queue a retry of a run's failed items (see sync_run_retry) for the django-q2 cluster."""
    return _enqueue(
        "productsync.tasks.sync_products_retry",
        run_id,
        trigger=SyncRun.Trigger.ADMIN,
        task_name=f"productsync retry of run {run_id}",
    )


def _lease_check(run: SyncRun) -> None:
    """Lock the run's row and make sure it is still running: a run taken for dead (marked
    aborted) must not come back to life and write over the lease of a newer run."""
    status = (
        SyncRun.objects.select_for_update().filter(pk=run.pk).values_list("status", flat=True)
    ).first()
    if status != Status.RUNNING:
        raise _lease_lost(run, status)


def _run_save_if_running(run: SyncRun, fields: list[str]) -> None:
    """Save fields of the run, which must still be running: the lease check and the update
    in one statement (the update takes the row lock the check would)."""
    if not update_row(
        SyncRun, run.pk, {name: getattr(run, name) for name in fields}, status=Status.RUNNING
    ):
        raise _lease_lost(
            run, SyncRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        )


def _lease_lost(run: SyncRun, status: str | None) -> LeaseLostError:
    return LeaseLostError(
        f"run {run.pk} was marked {status} by another process (taken for dead): "
        "it stopped, its batch undone"
    )


# Queue runs: the planner records each batch with its raw items and enqueues one django-q2
# task per batch; workers claim a batch once, write it with the same code as a local run, and
# the last one to report sets the run's status.


def _item_dump(item: FeedItem) -> list:
    if isinstance(item.payload, Unparsed):
        return [item.position, item.payload.text, item.payload.message]
    return [item.position, item.payload]


def _item_load(pair: list) -> FeedItem:
    if len(pair) == 3:
        return FeedItem(pair[0], Unparsed(pair[1], pair[2]))
    return FeedItem(pair[0], pair[1])


def _batch_enqueue(batch: SyncBatch, broker: Broker | None = None) -> None:
    async_task(
        "productsync.tasks.sync_batch",
        batch.pk,
        task_name=f"productsync run {batch.run_id} batch {batch.number}",
        group=f"productsync-run-{batch.run_id}",
        broker=broker or get_broker(),
    )


def _run_plan(run: SyncRun, items: Iterable[FeedItem], on_batch, bytes_read) -> "_RunWatch":
    """Record and enqueue every batch of a queue run; return the watch to wait with."""
    writer = BatchWriter(run.pk, run.source, default_currency())
    broker = get_broker()
    watch = _RunWatch(run, on_batch, broker)
    planned, next_position, error = 0, run.start_position, ""
    try:
        for number, chunk in enumerate(batched(items, run.batch_size), start=1):
            # Classes, categories and partners are created here, by one process, so that
            # workers writing batches side by side find them instead of racing to create them.
            writer.prepare(_records_of(chunk))
            batch = SyncBatch.objects.create(
                run=run,
                number=number,
                first_position=chunk[0].position,
                last_position=chunk[-1].position,
                status=BatchStatus.PENDING,
                items=len(chunk),
                payload=[_item_dump(item) for item in chunk],
                finished_at=None,
                heartbeat_at=timezone.now(),
            )
            _batch_enqueue(batch, broker)
            planned, next_position = number, chunk[-1].position + 1
            run.bytes_read = bytes_read()
            if not watch.step(planning=True):
                break  # taken for dead meanwhile: the lease check below says so
    except FeedError as exc:
        error = f"feed broke at item {next_position}: {exc}"
    except KeyboardInterrupt:
        _finish(run, "interrupted", status=Status.ABORTED)
        raise
    except DatabaseError as exc:
        logger.exception("planner of run %s stopped by a database error", run.pk)
        error = f"database error: {exc}"
    with transaction.atomic():
        _lease_check(run)
        locked = SyncRun.objects.get(pk=run.pk)
        locked.planned_batches = planned
        locked.error = error
        locked.bytes_read = bytes_read()
        locked.heartbeat_at = timezone.now()
        locked.save(update_fields=["planned_batches", "error", "bytes_read", "heartbeat_at"])
        _run_complete_if_done(locked)
    return watch


def _run_wait(run: SyncRun, watch: "_RunWatch") -> None:
    """Watch a planned queue run until its last batch reports, enqueueing again the batches
    whose worker died."""
    try:
        while watch.step():
            time.sleep(QUEUE_POLL)
    except KeyboardInterrupt:
        _finish(run, "interrupted", status=Status.ABORTED)
        raise


def _records_of(chunk: list[FeedItem]):
    for item in chunk:
        try:
            yield record_parse(item.payload)
        except RecordError:
            continue


class _RunWatch:
    """The planner's look at its queue run: heartbeat, progress, dead workers' batches."""

    def __init__(self, run: SyncRun, on_batch: OnBatch | None, broker: Broker) -> None:
        self.run = run
        self.on_batch = on_batch
        self.broker = broker
        self.reported: set[int] = set()
        self.last = 0.0

    def step(self, planning: bool = False) -> bool:
        """Look at the run (at most every QUEUE_POLL seconds while planning); return whether
        it is still running."""
        if planning and time.monotonic() - self.last < QUEUE_POLL:
            return True
        self.last = time.monotonic()
        run = self.run
        SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            heartbeat_at=timezone.now(), **({"bytes_read": run.bytes_read} if planning else {})
        )
        self._report()
        run.refresh_from_db()
        if run.status != Status.RUNNING:
            self._report()
            return False
        _batches_requeue_stale(run, self.broker)
        return True

    def _report(self) -> None:
        if not self.on_batch:
            return
        done = self.run.batch_set.exclude(status__in=UNFINISHED)
        fresh = set(done.values_list("pk", flat=True)) - self.reported
        if not fresh:
            return
        self.run.refresh_from_db()
        for batch in SyncBatch.objects.filter(pk__in=fresh).order_by("finished_at", "pk"):
            self.reported.add(batch.pk)
            result = BatchResult(
                batch.number,
                batch.first_position,
                batch.last_position,
                batch.items,
                created=batch.created,
                updated=batch.updated,
                unchanged=batch.unchanged,
                duration=batch.duration,
                error=batch.error,
            )
            result.failures = [
                ItemFailure(f.position, f.upc, f.message, f.raw_payload, f.field)
                for f in batch.failure_set.all()
            ]
            self.on_batch(self.run, result)


def _batches_requeue_stale(run: SyncRun, broker: Broker) -> None:
    """Enqueue again the batches of a queue run whose task was lost: claimed by a worker that
    stopped heart-beating (the Redis broker never redelivers), or still pending long after
    being enqueued while the broker's queue is empty (taken by a cluster that died)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=app_settings.STALE_AFTER)
    for batch in run.batch_set.filter(status=BatchStatus.RUNNING, heartbeat_at__lt=cutoff):
        reason = f"its worker ({batch.claimed_by}) stopped heart-beating"
        if batch.attempts >= app_settings.BATCH_ATTEMPTS:
            _batch_give_up(batch, batch.claimed_by, reason)
            continue
        if SyncBatch.objects.filter(
            pk=batch.pk, status=BatchStatus.RUNNING, claimed_by=batch.claimed_by
        ).update(status=BatchStatus.PENDING, claimed_by="", heartbeat_at=now, error=reason):
            logger.warning("run %s batch %s: %s; enqueued again", run.pk, batch.number, reason)
            _batch_enqueue(batch, broker)
    lost = run.batch_set.filter(status=BatchStatus.PENDING, heartbeat_at__lt=cutoff)
    if lost.exists() and not broker.queue_size():
        for batch in lost:
            if SyncBatch.objects.filter(pk=batch.pk, status=BatchStatus.PENDING).update(
                heartbeat_at=now
            ):
                logger.warning(
                    "run %s batch %s: its task was lost; enqueued again", run.pk, batch.number
                )
                _batch_enqueue(batch, broker)


def _run_complete_if_done(run: SyncRun) -> bool:
    """Set a queue run's final status once it is planned and no batch is left to write.
    The caller holds the run's row lock, so exactly one reporter completes it."""
    if run.status != Status.RUNNING or run.planned_batches is None:
        return False
    if run.batch_set.filter(status__in=UNFINISHED).exists():
        return False
    _finish(run, run.error)
    return True


def _noted_keys(run: SyncRun) -> set[str]:
    """Unknown keys a queue run already has a note about, so each is noted once."""
    prefix = "unknown keys ignored: "
    return {
        key
        for note in run.notes
        if note.startswith(prefix)
        for key in note[len(prefix) :].split(", ")
    }


def _batch_report(batch_id: int, token: str, result: BatchResult) -> bool:
    """Record the outcome of a queued batch if token still holds its claim; complete the run
    when it was the last. Return whether it was recorded."""
    with transaction.atomic():
        run_id = SyncBatch.objects.filter(pk=batch_id).values_list("run_id", flat=True).get()
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        batch = (
            SyncBatch.objects.select_for_update()
            .filter(pk=batch_id, status=BatchStatus.RUNNING, claimed_by=token)
            .first()
        )
        if batch is None:
            return False
        _batch_record(run, result, run.bytes_read, _noted_keys(run), batch=batch)
        _run_complete_if_done(run)
    return True


def _batch_failed_result(batch: SyncBatch, reason: str) -> BatchResult:
    result = BatchResult(
        batch.number, batch.first_position, batch.last_position, batch.items, error=reason
    )
    for item in map(_item_load, batch.payload or []):
        result.failures.append(
            ItemFailure(item.position, _upc_of(item.payload), reason, payload_dump(item.payload))
        )
    return result


def _batch_give_up(batch: SyncBatch, token: str, reason: str) -> None:
    reason = f"the batch failed {batch.attempts} times, the last because {reason}"
    if _batch_report(batch.pk, token, _batch_failed_result(batch, reason)):
        logger.error("run %s batch %s: %s", batch.run_id, batch.number, reason)


def sync_batch_execute(batch_id: int) -> str:
    """Write one batch of a queue run (the django-q2 task). Safe to deliver twice: the batch
    is claimed once, and its writes are idempotent upserts if it must be written again."""
    token = f"{_owner()}:{uuid.uuid4().hex[:8]}"
    batch = SyncBatch.objects.select_related("run").filter(pk=batch_id).first()
    if batch is None or batch.run.status != Status.RUNNING:
        return f"batch {batch_id}: nothing to do, its run is not running"
    claimed = SyncBatch.objects.filter(pk=batch_id, status=BatchStatus.PENDING).update(
        status=BatchStatus.RUNNING,
        claimed_by=token,
        heartbeat_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return f"batch {batch_id}: already claimed"
    batch.refresh_from_db()
    run = batch.run
    writer = BatchWriter(run.pk, run.source, default_currency())
    try:
        with _lock_timeouts():
            result, _ = _batch_transaction(
                writer, batch.number, [_item_load(p) for p in batch.payload], False
            )
    except Exception as exc:
        _batch_retry(batch, token, f"{type(exc).__name__}: {exc}")
        raise
    if not _batch_report(batch_id, token, result):
        return (
            f"batch {batch_id}: written, but its claim was taken over; the other worker records it"
        )
    return f"run {run.pk} batch {batch.number}: {result.status}"


def _batch_retry(batch: SyncBatch, token: str, reason: str) -> None:
    """After a worker's error: enqueue the batch again, or record it failed after
    PRODUCTSYNC['BATCH_ATTEMPTS'] claims. A database that refuses even this leaves the batch
    running, and the planner enqueues it again once its heartbeat is stale."""
    try:
        if batch.attempts >= app_settings.BATCH_ATTEMPTS:
            _batch_give_up(batch, token, reason)
        elif SyncBatch.objects.filter(
            pk=batch.pk, status=BatchStatus.RUNNING, claimed_by=token
        ).update(
            status=BatchStatus.PENDING, claimed_by="", heartbeat_at=timezone.now(), error=reason
        ):
            _batch_enqueue(batch)
    except DatabaseError:
        logger.exception(
            "run %s batch %s: could not record its failure", batch.run_id, batch.number
        )
