"""django-q2: the schedule, the cluster's state, enqueueing runs and batches."""

import logging
import uuid
from typing import Any, NamedTuple

from django_q.brokers import Broker, get_broker
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from productsync.conf import app_settings
from productsync.exceptions import QueueError
from productsync.models import SyncBatch, SyncRun
from productsync.outcomes import FeedItem
from productsync.records import Unparsed

logger = logging.getLogger(__name__)


SCHEDULE_NAME = "productsync.sync_products"


class Queued(NamedTuple):
    """A task handed to django-q2, the cluster's state then (see sync_queue_state), and the
    key the task records on the run it starts (SyncRun.queued_as)."""

    task_id: str
    state: str
    key: str


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


def task_enqueue(func: str, *args: Any, **kwargs: Any) -> Queued:
    """Queue func (a task that records queued_as on the run it starts) for the cluster."""
    from django_q.tasks import async_task

    key = uuid.uuid4().hex
    state = sync_queue_state()
    if state == "stopped":
        raise QueueError(
            "no django-q2 cluster is running, so nothing would run the sync: "
            "start one with `python manage.py qcluster`"
        )
    try:
        return Queued(async_task(func, *args, queued_as=key, **kwargs), state, key)
    except Exception as exc:  # the broker refused: Redis down, a database error
        raise QueueError(f"the django-q2 broker refused the task: {exc}") from exc


def sync_run_enqueue(*, dry_run: bool = False) -> Queued:
    """Queue a sync of PRODUCTSYNC's source (trigger `admin`) for the django-q2 cluster, run
    as the command runs it: its mode and batch size decided by run_spec_build. Return the
    task id and the queue state. Raises QueueError when no cluster is running."""
    return task_enqueue(
        "productsync.tasks.sync_products",
        app_settings.SOURCE,
        dry_run=dry_run,
        trigger=SyncRun.Trigger.ADMIN,
        task_name=f"productsync {'dry run' if dry_run else 'sync'} from the admin",
    )


def sync_run_enqueue_retry(run_id: int, duplicates: bool = False) -> Queued:
    """Queue a retry of a run's failed items (see sync_run_retry) for the django-q2 cluster."""
    return task_enqueue(
        "productsync.tasks.sync_products_retry",
        run_id,
        trigger=SyncRun.Trigger.ADMIN,
        duplicates=duplicates,
        task_name=f"productsync retry of run {run_id}",
    )


def item_dump(item: FeedItem) -> list:
    if isinstance(item.payload, Unparsed):
        unparsed = item.payload
        return [item.position, unparsed.text, unparsed.message, unparsed.field, unparsed.upc]
    return [item.position, item.payload]


def item_load(pair: list) -> FeedItem:
    if len(pair) >= 3:
        return FeedItem(pair[0], Unparsed(*pair[1:]))
    return FeedItem(pair[0], pair[1])


def batch_enqueue(batch: SyncBatch, broker: Broker | None = None) -> None:
    async_task(
        "productsync.tasks.sync_batch",
        batch.pk,
        task_name=f"productsync run {batch.run_id} batch {batch.number}",
        group=f"productsync-run-{batch.run_id}",
        broker=broker or get_broker(),
    )


def sync_run_queued(task_id: str, key: str) -> tuple[SyncRun | None, str]:
    """The run the task queued as key (see task_enqueue) started, or why none will come: the
    error of the task task_id when it failed before recording a run."""
    run = SyncRun.objects.filter(queued_as=key).first()
    if run is None:
        task = Task.objects.filter(id=task_id).values_list("success", "result").first()
        if task is not None and not task[0]:
            return None, str(task[1])
    return run, ""
