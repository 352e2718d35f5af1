"""The scheduled sync: the django-q2 schedule from settings, the task, a real qcluster."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule, Success
from oscar.core.loading import get_model

from productsync import tasks
from productsync.models import SyncRun
from productsync.services import SCHEDULE_NAME
from tests.conftest import product, qcluster, wait_for

Product = get_model("catalogue", "Product")


def schedule_command(settings, cron) -> str:
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SCHEDULE": cron}
    out = StringIO()
    call_command("sync_products_schedule", stdout=out)
    return out.getvalue()


def test_schedule_follows_the_setting(db, settings):
    assert "created: */5 * * * *" in schedule_command(settings, "*/5 * * * *")
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert schedule.func == "productsync.tasks.sync_products"
    assert schedule.schedule_type == Schedule.CRON
    assert schedule.cron == "*/5 * * * *"
    assert timezone.now() < schedule.next_run <= timezone.now() + timedelta(minutes=5)
    assert schedule.next_run.minute % 5 == 0

    assert "unchanged" in schedule_command(settings, "*/5 * * * *")
    assert "updated: 0 3 * * *" in schedule_command(settings, "0 3 * * *")
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert (schedule.cron, schedule.next_run.hour, schedule.next_run.minute) == ("0 3 * * *", 3, 0)

    assert "deleted" in schedule_command(settings, None)
    assert not Schedule.objects.filter(name=SCHEDULE_NAME).exists()
    assert "No schedule" in schedule_command(settings, None)


def test_migrate_applies_the_schedule(transactional_db, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "SCHEDULE": "15 * * * *"}
    out = StringIO()
    call_command("migrate", verbosity=1, stdout=out)
    assert Schedule.objects.get(name=SCHEDULE_NAME).cron == "15 * * * *"
    assert "productsync: Schedule productsync.sync_products created" in out.getvalue()


@pytest.mark.parametrize(
    "key, value, check_id",
    [
        ("SCHEDULE", "every five minutes", "productsync.E012"),
        ("SCHEDULE", "* * * *", "productsync.E012"),
        ("WORKERS", "threads", "productsync.E013"),
        ("BATCH_ATTEMPTS", 0, "productsync.E003"),
    ],
)
def test_bad_settings_are_reported(settings, key, value, check_id):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, key: value}
    assert check_id in [error.id for error in run_checks()]


def test_the_scheduled_task_syncs_with_trigger_schedule(db, settings, write_feed):
    settings.PRODUCTSYNC = {
        **settings.PRODUCTSYNC,
        "SOURCE": write_feed([product(f"T-{i}") for i in range(20)]),
    }
    run = SyncRun.objects.get(pk=tasks.sync_products())
    assert (run.trigger, run.status, run.created) == ("schedule", "succeeded", 20)
    assert Product.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_a_qcluster_runs_the_scheduled_sync(settings, write_feed, tmp_path):
    """The embedded default: django-q2's ORM broker on the project database, one qcluster."""
    feed = write_feed([product(f"Q-{i}") for i in range(30)])
    schedule_command(settings, "*/5 * * * *")
    # The time has come: make the schedule due instead of waiting for the next 5th minute.
    Schedule.objects.filter(name=SCHEDULE_NAME).update(next_run=timezone.now() - timedelta(1))
    env = {
        "PRODUCTSYNC_SOURCE": feed,
        "Q_CLUSTER_NAME": f"ps7-{uuid.uuid4().hex[:8]}",
        "Q_WORKERS": "1",
        # django-q2 runs its scheduler when the guard has counted 30 seconds of cycles: with
        # a 30 s cycle that is the first round, right after start.
        "Q_GUARD_CYCLE": "30",
        "Q_POLL": "0.1",
    }
    log = tmp_path / "qcluster.log"
    with qcluster(env, log):
        run = wait_for(
            lambda: SyncRun.objects.exclude(status="running").first(), 90, "a scheduled run", log
        )
        wait_for(lambda: Success.objects.exists(), 30, "the task's result", log)
    assert (run.trigger, run.status, run.created, run.source) == (
        "schedule",
        "succeeded",
        30,
        feed,
    ), run.error
    assert Product.objects.filter(upc__startswith="Q-").count() == 30
    assert Success.objects.get().result == run.pk
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    # Missed slots are not replayed (catch_up off): the next slot is after the run started,
    # not the day-old slot plus five minutes (compared with the run, not with now: the
    # scheduler may have picked a slot a moment away that has passed by this line).
    assert schedule.next_run > run.started_at
