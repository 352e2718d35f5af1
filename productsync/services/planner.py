"""The planner of a queue run: it records each batch with its raw items and enqueues one
django-q2 task per batch, then watches the run until the last batch reports."""

import logging
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone
from django_q.brokers import Broker, get_broker

from productsync.batching import batched
from productsync.conf import app_settings
from productsync.exceptions import FeedError, QueueError
from productsync.feeds import Feed
from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import BatchResult, FeedItem, ItemFailure
from productsync.records import one_line
from productsync.services.claims import batch_failed_result, batch_give_up, batch_report
from productsync.services.history import (
    UNFINISHED,
    OnBatch,
    run_complete_if_done,
    run_interrupted,
    run_note,
)
from productsync.services.lease import BatchStatus, Status, lease_check
from productsync.services.mode import RunMode
from productsync.services.queue import batch_enqueue, item_dump

logger = logging.getLogger(__name__)


# Seconds between two looks of a queue run's planner at its batches.
QUEUE_POLL = 0.5
# Longest wait between two tries of a broker that refused a task.
BROKER_RETRY_MAX = 5.0


def _enqueue_patiently(run: SyncRun, batch: SyncBatch, broker: Broker) -> None:
    """Enqueue the batch's task. While the broker refuses (Redis down or restarting), keep
    the run's heartbeat and try again, 0.5 s, 1 s... at most BROKER_RETRY_MAX apart, for up
    to STALE_AFTER seconds; then raise QueueError."""
    deadline = time.monotonic() + app_settings.STALE_AFTER
    delay = 0.5
    while True:
        try:
            batch_enqueue(batch, broker)
            return
        except DatabaseError:
            raise  # the ORM broker's database: the planner's database error
        except Exception as exc:  # the broker's client: connection refused, reset, timeout
            if time.monotonic() > deadline:
                raise QueueError(
                    f"the django-q2 broker refused batch {batch.number} for "
                    f"{app_settings.STALE_AFTER}s: {one_line(exc)}"
                ) from None
            logger.warning(
                "run %s batch %s: the broker refused it (%s); trying again",
                run.pk,
                batch.number,
                one_line(exc),
            )
        SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(heartbeat_at=timezone.now())
        time.sleep(delay)
        delay = min(delay * 2, BROKER_RETRY_MAX)


def run_plan(
    run: SyncRun, mode: RunMode, items: Iterable[FeedItem], feed: Feed, on_batch
) -> "_RunWatch":
    """Record and enqueue every batch of a queue run (items, read from feed); return the
    watch to wait with."""
    writer = mode.writer(run)
    broker = get_broker()
    watch = _RunWatch(run, on_batch, broker)
    planned, next_position, error = 0, run.start_position, ""
    try:
        for number, chunk in enumerate(batched(items, run.batch_size), start=1):
            # Classes, categories and partners are created here, by one process, so that
            # workers writing batches side by side find them instead of racing to create them.
            mode.prepare(writer, chunk)
            batch = SyncBatch.objects.create(
                run=run,
                number=number,
                first_position=chunk[0].position,
                last_position=chunk[-1].position,
                status=BatchStatus.PENDING,
                items=len(chunk),
                payload=[item_dump(item) for item in chunk],
                finished_at=None,
                heartbeat_at=timezone.now(),
            )
            try:
                _enqueue_patiently(run, batch, broker)
            except QueueError as exc:
                batch.delete()  # never enqueued: a resume reads the feed again from here
                error = f"{exc}; batches from {number} on were not planned"
                break
            planned, next_position = number, chunk[-1].position + 1
            run.bytes_read = feed.bytes_read
            if not watch.step(planning=True):
                break  # taken for dead meanwhile: the lease check below says so
            error = mode.failures_over(run)  # the batches already enqueued are written
            if error:
                run_note(run, error)
                break
    except FeedError as exc:
        error = f"feed broke at item {next_position}: {exc}"
    except KeyboardInterrupt as exc:
        run_interrupted(run, exc)
        raise
    except DatabaseError as exc:
        logger.exception("planner of run %s stopped by a database error", run.pk)
        error = f"database error: {exc}"
    with transaction.atomic():
        lease_check(run)
        locked = SyncRun.objects.get(pk=run.pk)
        locked.planned_batches = planned
        locked.error = error
        locked.bytes_read = feed.bytes_read
        locked.heartbeat_at = timezone.now()
        locked.save(update_fields=["planned_batches", "error", "bytes_read", "heartbeat_at"])
        run_complete_if_done(locked)
    return watch


def run_wait(run: SyncRun, watch: "_RunWatch") -> None:
    """Watch a planned queue run until its last batch reports, enqueueing again the batches
    whose worker died."""
    try:
        while watch.step():
            time.sleep(QUEUE_POLL)
    except KeyboardInterrupt as exc:
        run_interrupted(run, exc)
        raise


class _RunWatch:
    """The planner's look at its queue run: heartbeat, progress, dead workers' batches."""

    def __init__(self, run: SyncRun, on_batch: OnBatch | None, broker: Broker) -> None:
        self.run = run
        self.on_batch = on_batch
        self.broker = broker
        self.reported: set[int] = set()
        self.last = 0.0
        self.broker_down: float | None = None  # since when the broker refuses, if it does

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
        try:
            _batches_requeue_stale(run, self.broker)
        except DatabaseError:
            raise
        except Exception as exc:  # the broker is unreachable: wait for it, a while
            self.broker_down = self.broker_down or time.monotonic()
            down = time.monotonic() - self.broker_down
            logger.warning("run %s: the broker is unreachable (%s)", run.pk, one_line(exc))
            if not planning and down > app_settings.STALE_AFTER:
                _run_give_up(run, f"the django-q2 broker was unreachable for {down:.0f}s")
                return False
        else:
            self.broker_down = None
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
                repaired=batch.repaired,
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
            batch_give_up(batch, batch.claimed_by, reason)
            continue
        if SyncBatch.objects.filter(
            pk=batch.pk, status=BatchStatus.RUNNING, claimed_by=batch.claimed_by
        ).update(status=BatchStatus.PENDING, claimed_by="", heartbeat_at=now, error=reason):
            logger.warning("run %s batch %s: %s; enqueued again", run.pk, batch.number, reason)
            batch_enqueue(batch, broker)
    lost = run.batch_set.filter(status=BatchStatus.PENDING, heartbeat_at__lt=cutoff)
    if lost.exists() and not broker.queue_size():
        for batch in lost:
            if SyncBatch.objects.filter(pk=batch.pk, status=BatchStatus.PENDING).update(
                heartbeat_at=now
            ):
                logger.warning(
                    "run %s batch %s: its task was lost; enqueued again", run.pk, batch.number
                )
                batch_enqueue(batch, broker)


def _run_give_up(run: SyncRun, reason: str) -> None:
    """End a planned queue run failed: every batch not recorded yet is taken over from its
    worker (whose writes, if it commits, are then undone with its record) and recorded with
    its items failed; the last record sets the run's status."""
    SyncRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(error=reason)
    token = f"planner:{uuid.uuid4().hex[:8]}"
    for batch in run.batch_set.filter(status__in=UNFINISHED):
        if SyncBatch.objects.filter(pk=batch.pk, status__in=UNFINISHED).update(
            status=BatchStatus.RUNNING, claimed_by=token
        ):
            batch_report(batch.pk, token, batch_failed_result(batch, reason))
    run.refresh_from_db()
