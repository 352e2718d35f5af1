"""One run per source at a time, a dead run's lease released, and --resume."""

import os
import signal
import time
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from oscar.core.loading import get_model

from productsync.exceptions import ProductSyncError
from productsync.models import SyncedProduct, SyncRun
from productsync.services import sync_run_execute
from tests.conftest import product, qcluster, spawn_command, stop_group, wait_for

Product = get_model("catalogue", "Product")
StockRecord = get_model("partner", "StockRecord")


def pid_of(run: SyncRun) -> int:
    return int(run.owner.rsplit(":", 1)[1])


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_starts_one_is_skipped(write_feed, tmp_path):
    """Two processes start a run of one source at once; one takes the lease, the other is
    recorded as skipped and exits 1. The holder is a queue run, so it holds the lease while
    it waits for workers, outside any transaction, until the test starts a qcluster."""
    feed = write_feed([product(f"L-{i}") for i in range(60)])
    env = {"Q_CLUSTER_NAME": f"ps7-{uuid.uuid4().hex[:8]}", "Q_POLL": "0.1"}
    args = ("sync_products", "--source", feed, "--batch-size", "10", "--workers", "queue")
    procs = [spawn_command(*args, "--no-progress", env=env) for _ in range(2)]
    log = tmp_path / "qcluster.log"
    try:
        done = wait_for(
            lambda: [p for p in procs if p.poll() is not None], 60, "one start to give up"
        )
        assert len(done) == 1
        loser = done[0]
        holder = SyncRun.objects.get(status="running")
        winner = next(p for p in procs if p is not loser)
        assert pid_of(holder) == winner.pid
        with qcluster(env, log):
            out, _ = winner.communicate(timeout=60)
    finally:
        for proc in procs:
            stop_group(proc)
    assert loser.returncode == 1
    skipped = SyncRun.objects.get(status="skipped")
    reason = f"run {holder.pk} of this source is still running (in {holder.owner})"
    assert skipped.error == reason
    assert f"Run {skipped.pk} skipped: {reason}" in loser.stderr.read()
    assert winner.returncode == 0, out
    assert SyncRun.objects.get(pk=holder.pk).status == "succeeded"
    assert f"Run {holder.pk} succeeded: 60 items, 60 created" in out
    assert Product.objects.count() == 60


@pytest.mark.django_db(transaction=True)
def test_a_killed_run_is_aborted_and_resume_finishes_it(write_feed, settings):
    feed = write_feed([product(f"K-{i}") for i in range(300)])
    # Each committed batch lingers 50 ms (BATCH_PAUSE): the run is still going when the test
    # sees its third batch, however fast the sync and however slow the test is scheduled.
    proc = spawn_command(
        "sync_products",
        *("--source", feed, "--batch-size", "10", "--no-progress"),
        env={"DJANGO_SETTINGS_MODULE": "tests.fault_settings", "BATCH_PAUSE": "0.05"},
    )
    try:
        run = wait_for(
            lambda: SyncRun.objects.filter(status="running", batches__gte=3).first(),
            60,
            "three committed batches",
        )
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        stop_group(proc)
    run.refresh_from_db()
    committed = run.batches
    assert run.status == "running"  # nobody has noticed yet

    # While its heartbeat is fresh it still holds the lease: no resume, no other run.
    with pytest.raises(CommandError, match=f"run {run.pk} is running"):
        call_command("sync_products", "--resume", str(run.pk), stdout=StringIO())
    with pytest.raises(CommandError, match=f"run {run.pk} of this source is still running"):
        call_command("sync_products", "--source", feed, stdout=StringIO())

    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "STALE_AFTER": 1}
    time.sleep(1.1)
    out = StringIO()
    call_command("sync_products", "--resume", str(run.pk), "--no-progress", stdout=out)

    run.refresh_from_db()
    assert run.status == "aborted"
    assert run.error == f"no heartbeat from {run.owner} for 1s: the process is taken for dead"
    resumed = SyncRun.objects.get(resumed_from=run)
    assert (resumed.source, resumed.batch_size, resumed.status) == (feed, 10, "succeeded")
    assert resumed.start_position == committed * 10
    assert resumed.items == resumed.total_items == 300 - committed * 10
    assert f"Run {resumed.pk} succeeded: {300 - committed * 10} items" in out.getvalue()
    assert Product.objects.count() == StockRecord.objects.count() == 300
    assert SyncedProduct.objects.count() == 300
    assert sorted(Product.objects.values_list("upc", flat=True)) == sorted(
        f"K-{i}" for i in range(300)
    )
    with pytest.raises(CommandError, match=f"run {run.pk} was already resumed by run {resumed.pk}"):
        call_command("sync_products", "--resume", str(run.pk), stdout=StringIO())


def test_a_run_taken_for_dead_does_not_come_back(db, write_feed):
    """A slow run marked aborted by another process stops instead of taking the lease back."""
    feed = write_feed([product(f"S-{i}") for i in range(30)])

    def taken_for_dead(run, result):
        SyncRun.objects.filter(pk=run.pk).update(status="aborted")

    with pytest.raises(ProductSyncError, match="was marked aborted by another process"):
        sync_run_execute(feed, batch_size=10, on_batch=taken_for_dead)
    run = SyncRun.objects.get()
    assert (run.status, run.batches) == ("aborted", 1)
    # Batch 2 was written and recorded in one transaction: the refused record undid it.
    assert Product.objects.count() == 10


def test_resume_refuses_what_cannot_be_resumed(db, write_feed):
    feed = write_feed([product("R-1")])
    done = sync_run_execute(feed)
    with pytest.raises(ProductSyncError, match=f"run {done.pk} is succeeded"):
        sync_run_execute(resume=done.pk)
    with pytest.raises(ProductSyncError, match="run 999999 does not exist"):
        sync_run_execute(resume=999999)
