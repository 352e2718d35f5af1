"""Runs that die or stall must leave a trace: a terminated run ends aborted and resumable."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.checks import check_settings
from productsync.models import SyncBatch, SyncRun
from productsync.services.history import TERMINATED, run_interrupted
from productsync.services.scratch import run_temp_dir, temp_leftovers_remove
from tests.conftest import ROOT, product, qcluster, run_command, subprocess_env, wait_for
from tests.guarantees.test_faults import (
    FAULT_SETTINGS,
    LARGE,
    assert_whole_batches,
    start_sync,
    wait_for_batch,
    wait_until_stale,
)
from tests.services.test_fanout import big_feed

Product = get_model("catalogue", "Product")


@pytest.fixture
def large_feed(write_feed) -> str:
    return write_feed([product(f"K{i:05d}") for i in range(LARGE)], name="large.json")


@pytest.mark.django_db(transaction=True)
def test_sigterm_aborts_the_run_and_it_resumes(large_feed):
    process = start_sync(large_feed)
    wait_for_batch(process, 2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip() == (
        "CommandError: terminated (SIGTERM): the run is marked aborted; "
        "the batches committed before stay"
    )
    run = SyncRun.objects.get()
    assert (run.status, run.error) == (SyncRun.Status.ABORTED, "terminated (SIGTERM)")
    assert_whole_batches()

    # The lease is released at once: the next start resumes instead of being skipped.
    resumed = run_command("sync_products", "--resume", str(run.pk), "--json", env=FAULT_SETTINGS)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert Product.objects.count() == LARGE
    assert_whole_batches()


@pytest.mark.django_db(transaction=True)
def test_an_interrupt_between_begin_and_django_knowing_still_records_the_run_aborted():
    """The race SIGTERM and Ctrl-C can hit: the signal lands in Atomic.__enter__ after its
    BEGIN went to the database, so the connection holds a transaction Django does not know."""
    run = SyncRun.objects.create(source="a", batch_size=5, status="running")
    connection.ensure_connection()
    connection.connection.cursor().execute("BEGIN")  # as Atomic.__enter__ had sent it
    run_interrupted(run, KeyboardInterrupt(TERMINATED))
    connection.close()  # as the process ends: what was not committed is gone
    run.refresh_from_db()
    assert (run.status, run.error) == ("aborted", TERMINATED)


def magento_csv(folder: Path, rows: int) -> str:
    path = folder / "magento.csv"
    path.write_text(
        "sku,product_type,attribute_set_code,name,price,qty,configurable_variations\n"
        + "".join(f"M{i:05d},simple,Default,Shirt {i},9.50,3,\n" for i in range(rows)),
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.django_db(transaction=True)
def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    feed = magento_csv(tmp_path, LARGE)
    overrides = json.dumps({"TEMP_DIR": str(scratch), "STALE_AFTER": 1})
    env = {"PRODUCTSYNC_OVERRIDES": overrides}
    process = start_sync(feed, env, "--preset", "magento")
    wait_for_batch(process, 2)
    killed = SyncRun.objects.get()
    # The row index of the grouped CSV, under TEMP_DIR in a folder named after the run.
    folder = scratch / Path(run_temp_dir(killed)).name  # the worker's TEMP_DIR
    assert list(folder.rglob("rows.sqlite3"))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)

    wait_until_stale(killed, 1)
    final = run_command(
        "sync_products", "--source", feed, "--preset", "magento", env={**FAULT_SETTINGS, **env}
    )
    assert final.returncode == 0, final.stderr
    assert list(scratch.iterdir()) == []  # the dead run's folder, and the new run's own


@pytest.mark.django_db(transaction=True)
def test_a_run_of_another_database_sharing_temp_dir_leaves_this_ones_folders(tmp_path, write_feed):
    """Two shops (or a test run beside another) on one host: runs of the same ids."""
    scratch = tmp_path / "scratch"
    env = {"PRODUCTSYNC_OVERRIDES": json.dumps({"TEMP_DIR": str(scratch)})}
    running = SyncRun.objects.create(source="elsewhere", batch_size=5, status="running")
    with override_settings(PRODUCTSYNC={**settings.PRODUCTSYNC, "TEMP_DIR": str(scratch)}):
        folder = Path(run_temp_dir(running))
    assert folder.parent == scratch
    (folder / "rows").mkdir(parents=True)
    other = {
        **subprocess_env({**FAULT_SETTINGS, **env}),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}",
    }
    feed = write_feed([product("X1")])
    for args in (["migrate", "--verbosity", "0"], ["sync_products", "--source", feed]):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], env=other, cwd=ROOT, capture_output=True
        )
        assert done.returncode == 0, done.stderr
    assert b"1 created" in done.stdout  # the other shop's run 1, as ours may be
    assert (folder / "rows").is_dir()


@pytest.mark.django_db
def test_leftover_folders_of_the_earlier_name_are_removed_a_running_runs_kept(tmp_path):
    running = SyncRun.objects.create(source="a", batch_size=5, status="running")
    ended = SyncRun.objects.create(source="b", batch_size=5, status="succeeded")
    legacy = tmp_path / f"productsync-run-{ended.pk}"  # named before folders named a database
    (legacy / "rows").mkdir(parents=True)
    with override_settings(PRODUCTSYNC={**settings.PRODUCTSYNC, "TEMP_DIR": str(tmp_path)}):
        kept = Path(run_temp_dir(running))
        (kept / "rows").mkdir(parents=True)
        assert temp_leftovers_remove() == 1
    assert [p.name for p in tmp_path.iterdir()] == [kept.name]


def test_a_temp_dir_that_is_no_writable_folder_is_reported(settings, tmp_path):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "TEMP_DIR": str(tmp_path / "missing")}
    assert [error.id for error in check_settings(None)] == ["productsync.E041"]
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "TEMP_DIR": str(tmp_path)}
    assert check_settings(None) == []


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_beats_while_a_grouped_feed_is_counted(tmp_path):
    feed = magento_csv(tmp_path, 150_000)
    process = start_sync(feed, {}, "--preset", "magento")
    try:
        wait_for(lambda: SyncRun.objects.exists(), 60, "the run to start")
        run = SyncRun.objects.get()
        started, oldest = time.monotonic(), 0.0
        # Before its first batch the run counts the feed and indexes its rows: a while.
        while not SyncBatch.objects.exists() and process.poll() is None:
            run.refresh_from_db()
            oldest = max(oldest, (timezone.now() - run.heartbeat_at).total_seconds())
            time.sleep(0.2)
        counting = time.monotonic() - started
    finally:
        process.kill()
        process.wait(timeout=60)
    assert counting > 6, "the feed was counted too fast to tell"
    assert oldest < 4, f"no heartbeat for {oldest:.1f}s while counting ({counting:.1f}s)"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_queue_run_whose_cluster_is_killed_is_ended_aborted_and_resumes(
    write_feed, cluster_env, tmp_path, settings, admin_client
):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "STALE_AFTER": 3}
    env = {**cluster_env, "PRODUCTSYNC_STALE_AFTER": "3"}
    feed = big_feed(write_feed, "DIE")
    log = tmp_path / "q.log"
    with qcluster(env, log) as cluster:
        # The planner is a task of the cluster, as a scheduled queue run's is.
        enqueue = "from django_q.tasks import async_task; async_task(" + (
            f"'productsync.tasks.sync_products', {feed!r}, batch_size=20, workers='queue')"
        )
        assert run_command("shell", "-c", enqueue, env=env).returncode == 0
        wait_for(
            lambda: SyncBatch.objects.filter(status="succeeded").count() >= 3,
            90,
            "three batches written",
            log,
            0.01,
        )
        os.killpg(cluster.pid, signal.SIGKILL)  # the machine is lost: planner and workers
    run = SyncRun.objects.get()
    assert run.status == "running"  # nobody has noticed yet
    unwritten = run.batch_set.filter(status__in=["pending", "running"]).count()
    assert unwritten > 0

    wait_until_stale(run, 3)
    assert SyncRun.objects.get().status == "running"
    page = admin_client.get(reverse("admin:productsync_syncrun_changelist"))
    assert page.status_code == 200
    run.refresh_from_db()
    assert run.status == "aborted"
    assert run.error == (
        f"no heartbeat from {run.owner} for 3s: the process is taken for dead; "
        f"{unwritten} batches left unwritten, for a resume to write"
    )
    committed = run.batch_set.filter(status="succeeded").count()
    assert run.items == run.created == committed * 20 == Product.objects.count()

    resumed = run_command("sync_products", "--resume", str(run.pk), "--json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    new = SyncRun.objects.get(resumed_from=run)
    first = run.batch_set.filter(status__in=["pending", "running"]).order_by("number").first()
    assert (new.status, new.start_position) == ("succeeded", first.first_position)
    assert new.items == 2000 - new.start_position == new.created + new.unchanged
    assert sorted(Product.objects.values_list("upc", flat=True)) == [
        f"DIE-{i:05d}" for i in range(2000)
    ]
