"""The run loop: build a run, read its feed in batches, and end it."""

import contextlib
import dataclasses
import gc
import itertools
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable

from django.db import DatabaseError, connection, reset_queries
from django.utils import timezone

from productsync.batching import batched
from productsync.exceptions import FeedError, LeaseLostError, ProductSyncError, SourceError
from productsync.feeds import Feed, feed_open, is_url
from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import BatchResult, FeedItem
from productsync.records import one_line
from productsync.services.batch import BatchContext, batch_commit
from productsync.services.guard import guard_judge
from productsync.services.hide_missing import run_hide_missing
from productsync.services.history import (
    TERMINATED,
    OnBatch,
    batch_record,
    run_finish,
    run_interrupted,
    run_note,
    run_reload,
)
from productsync.services.items import items_note_unrecorded, items_writer_set
from productsync.services.lease import Status, run_record
from productsync.services.locks import lock_timeouts, reconnect
from productsync.services.mode import batch_after_commit
from productsync.services.planner import run_plan, run_wait
from productsync.services.scratch import run_temp_dir, run_temp_remove, temp_leftovers_remove
from productsync.services.source import source_display, source_redact
from productsync.services.spec import RunSpec, run_spec_build
from productsync.services.unchanged import (
    catalogue_state_store,
    http_validators,
    run_skip_unchanged,
    spec_feed_digest,
)
from productsync.writer import ImageSync, catalogue_category_view_refresh

logger = logging.getLogger(__name__)


def sync_run_execute(
    source: str | None = None,
    *,
    on_start: Callable[[SyncRun], None] | None = None,
    on_batch: OnBatch | None = None,
    **options,
) -> SyncRun:
    """Build the run's spec from source and options (see run_spec_build) and run it (see
    run_spec_execute)."""
    return run_spec_execute(run_spec_build(source, **options), on_start=on_start, on_batch=on_batch)


def run_spec_execute(
    spec: RunSpec,
    *,
    on_start: Callable[[SyncRun], None] | None = None,
    on_batch: OnBatch | None = None,
) -> SyncRun:
    """Sync a feed into the catalogue, one transaction per batch, and record the run.

    workers "queue" makes this process the planner of the run: django-q2 workers write its
    batches. A resumed run, linked to the run it resumes, reads from that run's first
    uncommitted batch. With hide_missing a complete run hides the source's products it did
    not see. on_start(run) is called once the feed is open, on_batch(run, result) after each
    batch.

    Raises SourceError when the feed cannot be opened and RunActiveError when another run of
    the source is active; both after recording the run. Any other failure ends the run
    `failed` with the reason; batches committed before it stay. Unless full: an HTTP source
    unchanged since the last successful run (304), or a local file whose bytes and settings
    are those of the source's last run, which succeeded, while none of the source's products
    changed since, ends at once `succeeded` with 0 items and a note."""
    try:
        run = sync_run_start(spec)
    except DatabaseError as exc:
        raise ProductSyncError(f"the database refused to record the run: {one_line(exc)}") from None
    try:
        temp_leftovers_remove()
        digest = ""
        if spec.whole_file and spec.workers == SyncRun.Workers.LOCAL:
            digest = spec_feed_digest(spec)
        if digest and not spec.full and run_skip_unchanged(run, digest):
            return run
        run.feed_digest = digest  # kept if the run succeeds without an image left to fetch
        with _gc_frozen(), _sigterm_interrupts():
            error = _run_feed(run, spec, on_start, on_batch)
    except SourceError as exc:
        exc.run_id = run.pk
        run_finish(run, source_redact(str(exc), spec.source))
        raise
    except BaseException as exc:
        exc.run_id = run.pk  # the face shows the run's summary, read from the database
        if run.status == Status.RUNNING and isinstance(exc, KeyboardInterrupt):
            run_interrupted(run, exc)  # before the first batch: counting, grouping
        elif run.status == Status.RUNNING and isinstance(exc, Exception):
            # A bug, not bad input: end the run so its lease is released, and let it surface.
            run_finish(run, f"unexpected error: {exc!r}")
        raise
    finally:
        run_temp_remove(run)
    if error is None:
        return run  # finished already: an unchanged HTTP source, a mass change
    _run_end(run, spec, error)
    with contextlib.suppress(DatabaseError):  # the run as recorded, not as counted here
        run.refresh_from_db()
    return run


def _run_end(run: SyncRun, spec: RunSpec, error: str) -> None:
    """After the feed was read (whole, or until error stopped it): note the items without
    recorded changes, refresh Oscar's category view, hide the missing products, and end a
    local run (a queue run is ended by the batch that reports last)."""
    items_note_unrecorded(run)
    if not spec.dry_run:
        # Also after an early stop: the batches committed before it changed the catalogue.
        refresh_error = _catalogue_refresh(run)
        error = error or refresh_error
    if spec.hide_missing:
        try:
            run_hide_missing(run, spec, error)
        except DatabaseError as exc:
            error = error or f"hiding the products missing from the feed failed: {exc}"
    if spec.workers == SyncRun.Workers.QUEUE:
        if error != run.error:
            run.error = error
            run.save(update_fields=["error"])
    else:
        run_finish(run, error)
        if run.feed_digest and run.status == Status.SUCCEEDED:
            catalogue_state_store(run)


def sync_run_start(spec: RunSpec) -> SyncRun:
    """Record the spec's run, running; a non-dry run takes the source's lease (raises
    RunActiveError, after recording a skipped run, when another run holds it)."""
    return run_record(
        {
            "source": source_display(spec.source),
            "batch_size": spec.batch_size,
            "dry_run": spec.dry_run,
            "trigger": spec.trigger,
            "retry_of": spec.retry_of,
            "workers": spec.workers,
            "resumed_from": spec.resumed_from,
            "start_position": spec.start,
            "partial": spec.mode.partial,
            "stock_authoritative": spec.mode.stock_authoritative,
            "allow_mass_change": spec.mode.allow_mass_change,
            "only": spec.mode.only,
            "compare": spec.mode.compare,
            "owns": ",".join(spec.mode.owns or ()),
            "partner": spec.mode.partner or "",
            **spec.record,
            "notes": [*spec.mode.start_notes(), *spec.record.get("notes", [])],
            "diff": spec.diff,
        }
    )


def _sigterm_raise(signum, frame) -> None:
    raise KeyboardInterrupt(TERMINATED)


@contextlib.contextmanager
def _sigterm_interrupts():
    """SIGTERM (systemd, docker, `timeout`, django-q2's timeout) stops the run as Ctrl-C does,
    ending it aborted and resumable instead of leaving it running until taken for dead. Only
    the main thread may handle signals; the previous handler is put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _sigterm_raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _gc_frozen():
    """Leave what exists before the feed is read (Django, Oscar, the app registry) out of the
    cyclic collector's walks while it is read: a batch's items survive long enough to reach
    the oldest generation, and every full collection walked all of start-up's objects again.
    Unfrozen afterwards, so nothing is kept from collection beyond the run."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _run_feed(run: SyncRun, spec: RunSpec, on_start, on_batch) -> str | None:
    """Open the run's source and sync it; return the error that stopped it early, or '', or
    None when the run is finished already: an HTTP source unchanged since the last successful
    run (never when full), a mass change stopped before any write (see services.guard). A
    queue run returns once its last batch reported."""
    # The source as given (run.source is its display, without credentials).
    source, start, limit = spec.source, run.start_position, spec.limit
    if spec.open_feed is not None:
        feed = spec.open_feed(source)
    else:
        validators = ("", "") if spec.full else http_validators(run.source, run)
        # Counting and grouping a large feed take a while before the first batch: beat.
        options = dataclasses.replace(spec.feed, temp_dir=run_temp_dir(run), beat=_run_beat(run))
        feed = feed_open(source, options=options, validators=validators)
    if spec.open_feed is None and is_url(source) and limit is None:
        # A run cut short by --limit must not let the next run skip the rest as unchanged.
        run.http_etag, run.http_last_modified = feed.etag[:1000], feed.last_modified[:100]
        run.save(update_fields=["http_etag", "http_last_modified"])
    if feed.not_modified:
        feed.close()
        run.notes.append("the source is unchanged since the last successful run (HTTP 304)")
        run.save(update_fields=["notes"])
        run_finish(run, "")
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
        with lock_timeouts():
            items, stopped = guard_judge(run, spec.mode, items)
            if stopped:
                run_finish(run, stopped)
                return None  # nothing written: nothing to refresh, hide or note
            if run.workers != SyncRun.Workers.QUEUE:
                error = _run_batches(run, spec, items, feed, on_batch)
                _run_note_feed(run, feed)
                if not error:
                    _run_archive(run, feed, spec)
                return error
            watch = run_plan(run, spec.mode, items, feed, on_batch)
            _run_note_feed(run, feed)
    run_wait(run, watch)  # the batch that reports last finishes the run
    if not run.error:
        _run_archive(run, feed, spec)
    return run.error


def _run_archive(run: SyncRun, feed: Feed, spec: RunSpec) -> None:
    """Move a remote file that the run read to its end into its archive folder (a dry run
    or a run cut short by --limit leaves it); a move that fails is noted, not fatal: every
    item was read."""
    if feed.archive is None or run.dry_run or spec.limit is not None:
        return
    try:
        run.notes.append(f"archived to {feed.archive()}")
    except SourceError as exc:
        run.notes.append(f"not archived: {exc}")
    run.save(update_fields=["notes"])


def _run_note_feed(run: SyncRun, feed: Feed) -> None:
    """Add what reading the feed noted (the mapping a CSV header chose, columns not read,
    items a mapping's filter skipped) to the run's notes."""
    new = [note for note in feed.notes if note not in run.notes]
    if new:
        run.notes.extend(new)
        run.save(update_fields=["notes"])


def _catalogue_refresh(run: SyncRun) -> str:
    """Oscar's category materialised view, refreshed once per run (bulk writes skip the
    per-row signal that refreshes it); return an error for the run, or ''."""
    if not (run.created or run.updated or run.repaired):
        return ""
    try:
        catalogue_category_view_refresh()
    except DatabaseError as exc:
        return f"refreshing the category materialised view failed: {exc}"
    return ""


# While a run fetches a batch's images, counts its feed or groups its rows, its heartbeat is
# saved at most this often (seconds).
IMAGE_HEARTBEAT_EVERY = 1.0


def _run_beat(run: SyncRun) -> Callable[[], None]:
    """A heartbeat for the long stretches without a batch: the images of a batch just
    committed (each takes at most IMAGE_TIMEOUT), counting the feed and grouping its rows, so
    the run never looks dead meanwhile."""
    last = time.monotonic()

    def beat() -> None:
        nonlocal last
        if time.monotonic() - last >= IMAGE_HEARTBEAT_EVERY:
            run.heartbeat_at = timezone.now()
            SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=run.heartbeat_at)
            last = time.monotonic()

    return beat


def _run_batches(
    run: SyncRun, spec: RunSpec, items: Iterable[FeedItem], feed: Feed, on_batch
) -> str:
    """Process every batch of items, read from feed; return the error that stopped the run
    early, or ''."""
    writer = spec.mode.writer(run)

    def record(result: BatchResult) -> SyncBatch:
        return batch_record(run, result, feed.bytes_read)

    context = BatchContext(run, spec.mode, writer, record)
    images = ImageSync(spec.source)
    try:
        for number, chunk in enumerate(batched(items, run.batch_size), start=1):
            items_writer_set(writer, run)
            result, batch = batch_commit(context, number, chunk)
            # The batch is committed: a slow image server holds no transaction open.
            batch_after_commit(run, batch, result, images, beat=_run_beat(run))
            if not connection.force_debug_cursor:
                # With DEBUG on, Django keeps the SQL of the last 9000 queries; bulk
                # queries are large, so a long run would hold megabytes of SQL text.
                reset_queries()
            if on_batch:
                on_batch(run, result)
            over = spec.mode.failures_over(run)
            if over:
                run_note(run, over)
                return over
    except FeedError as exc:
        if run.items == 0:
            # Nothing of it could be read: the source is unusable, not broken part-way.
            raise SourceError(f"{run.source}: {exc}") from None
        return f"feed broke at item {run.start_position + run.items}: " + source_redact(
            str(exc), spec.source
        )
    except KeyboardInterrupt as exc:
        run_interrupted(run, exc)
        raise
    except LeaseLostError as exc:
        run_finish(run, str(exc), status=Status.ABORTED)
        raise
    except DatabaseError as exc:
        logger.warning("run %s stopped by a database error: %s", run.pk, one_line(exc))
        reconnect()
        run_reload(run)
        return f"database error: {exc}"
    finally:
        images.close()
    return ""
