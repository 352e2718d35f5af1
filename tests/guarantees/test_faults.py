"""Real faults during a sync: SIGKILL, a terminated connection, locks, a read-only database,
a lost lease. Only whole batches may remain, the run ends with a clear status, and a re-run
converges to the full catalogue."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from oscar.core.loading import get_model

from productsync.exceptions import LeaseLostError, ProductSyncError, RunActiveError
from productsync.models import SyncBatch, SyncedProduct, SyncRun
from productsync.services import sync_run_abort_stale, sync_run_execute
from tests.conftest import ROOT, product, run_command, subprocess_env

Product = get_model("catalogue", "Product")
ProductCategory = get_model("catalogue", "ProductCategory")
StockRecord = get_model("partner", "StockRecord")

FAULT_SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.fault_settings"}
LARGE = 2000
# Small batches, each pausing 20 ms after its commit (BATCH_PAUSE): after the batch a test
# waits for, the run still has about a hundred to go, so a signal sent then lands mid-run
# even when the test process is slow to be scheduled.
BATCH = 20


@pytest.fixture
def large_feed(write_feed) -> str:
    return write_feed([product(f"K{i:05d}") for i in range(LARGE)], name="large.json")


def start_sync(source: str, env: dict | None = None, *args: str) -> subprocess.Popen:
    """manage.py sync_products in the background, one unbuffered line per batch."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "sync_products", "--source", source]
        + ["--batch-size", str(BATCH), "--no-progress", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=subprocess_env(
            {"PYTHONUNBUFFERED": "1", "BATCH_PAUSE": "0.02", **FAULT_SETTINGS, **(env or {})}
        ),
        # A shell without job control starts background jobs with SIGINT ignored, and Python
        # then installs no KeyboardInterrupt handler: Ctrl-C must reach the sync as from a
        # terminal, however the test suite itself was started.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_batch(process: subprocess.Popen, number: int) -> None:
    for line in process.stdout:
        if line.startswith(f"Batch {number}/"):
            return
    raise AssertionError(f"the sync ended before batch {number}: {process.stderr.read()}")


def assert_whole_batches() -> None:
    """Every product in the catalogue came with a whole committed batch and is complete."""
    products = Product.objects.count()
    recorded = sum(SyncBatch.objects.values_list("created", flat=True))
    assert products == recorded
    assert StockRecord.objects.count() == products
    assert ProductCategory.objects.count() == products
    assert SyncedProduct.objects.count() == products
    for run in SyncRun.objects.all():
        batches = run.batch_set.all()
        assert run.batches == len(batches)
        assert run.items == sum(b.items for b in batches)
        assert run.items == run.created + run.updated + run.unchanged + run.failed


def wait_until_stale(run: SyncRun, stale_after: float) -> None:
    run.refresh_from_db()
    age = (timezone.now() - run.heartbeat_at).total_seconds()
    time.sleep(max(0.0, stale_after - age + 0.1))


@pytest.mark.django_db(transaction=True)
def test_sigkill_at_several_points_leaves_whole_batches_and_a_rerun_converges(large_feed):
    killed = []
    for kill_after in (1, 7, 13):
        if killed:
            wait_until_stale(killed[-1], 1)
        process = start_sync(large_feed, {"PRODUCTSYNC_OVERRIDES": '{"STALE_AFTER": 1}'})
        wait_for_batch(process, kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGKILL
        killed.append(SyncRun.objects.order_by("-pk").first())
        assert killed[-1].status == SyncRun.Status.RUNNING  # nobody could record the end
        assert_whole_batches()
        assert 0 < Product.objects.count() < LARGE

    # Straight after a kill the dead run still holds the lease: a re-run is refused.
    with pytest.raises(RunActiveError, match=f"run {killed[-1].pk} of this source is still"):
        sync_run_execute(large_feed, batch_size=BATCH)

    wait_until_stale(killed[-1], 1)
    before = Product.objects.count()
    final = run_command(
        "sync_products",
        "--source",
        large_feed,
        "--json",
        env={**FAULT_SETTINGS, "PRODUCTSYNC_OVERRIDES": '{"STALE_AFTER": 1}'},
    )
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout.splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert (summary["created"], summary["unchanged"]) == (LARGE - before, before)
    for run in killed:
        run.refresh_from_db()
        assert run.status == SyncRun.Status.ABORTED
        assert "no heartbeat" in run.error
    assert Product.objects.count() == LARGE
    assert_whole_batches()


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_aborts_the_run_in_one_line(large_feed):
    process = start_sync(large_feed)
    wait_for_batch(process, 2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip() == (
        "CommandError: interrupted: the run is marked aborted; the batches committed before stay"
    )
    run = SyncRun.objects.get()
    assert (run.status, run.error) == (SyncRun.Status.ABORTED, "interrupted")
    assert_whole_batches()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_terminated_connection_mid_batch_rolls_back_and_retries_the_batch(large_feed):
    process = start_sync(large_feed, {"DATABASE_OPTIONS": '{"application_name": "ps-victim"}'})
    wait_for_batch(process, 2)
    terminated = None
    with connection.cursor() as cursor:
        while terminated is None and process.poll() is None:
            # A backend of the sync between two statements of a transaction that has
            # written: mid-batch (a single-statement write, such as recording the run's end,
            # is survived on a new connection without a batch to roll back).
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'ps-victim' AND backend_xid IS NOT NULL "
                "AND state = 'idle in transaction'"
            )
            terminated = cursor.fetchone()
    out, err = process.communicate(timeout=120)
    assert terminated == (True,), "the sync finished before its connection was terminated"
    assert "Traceback" not in err
    assert "rolled back" in err  # the batch was undone and tried again
    assert process.returncode == 0, err
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.items, run.created) == (LARGE, LARGE)
    assert_whole_batches()


def terminate_backend(pid: int) -> None:
    """Another session (a DBA, a failover) terminates a backend."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_connection_terminated_between_batches_is_replaced(write_feed):
    feed = write_feed([product(f"T{i:02d}") for i in range(30)])

    def kill_connection(run, result):
        if result.number == 1:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            killer = threading.Thread(target=terminate_backend, args=(pid,))
            killer.start()
            killer.join()

    run = sync_run_execute(feed, batch_size=10, on_batch=kill_connection)
    assert (run.status, run.created, run.batches) == (SyncRun.Status.SUCCEEDED, 30, 3)
    assert_whole_batches()


def holding_row_lock(upc: str, locked: threading.Event, release: threading.Event) -> None:
    """Another transaction (a shop admin editing the product) holds its row lock."""
    try:
        with transaction.atomic():
            list(Product.objects.select_for_update().filter(upc=upc))
            locked.set()
            release.wait(timeout=60)
    finally:
        connections.close_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_row_lock_makes_the_batch_wait_lock_timeout_then_fail(write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "LOCK_TIMEOUT": 1}
    items = [product(f"L{i:02d}") for i in range(30)]
    sync_run_execute(write_feed(items, "first.json"), batch_size=10)
    renamed = write_feed([{**i, "title": i["title"] + " v2"} for i in items], "second.json")

    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=holding_row_lock, args=("L15", locked, release))
    holder.start()
    try:
        assert locked.wait(timeout=30)
        run = sync_run_execute(renamed, batch_size=10, allow_mass_change=True)  # all renamed
    finally:
        release.set()
        holder.join()

    assert run.status == SyncRun.Status.COMPLETED_WITH_FAILURES
    assert (run.updated, run.failed) == (20, 10)
    batch = run.batch_set.get(number=2)
    assert batch.failed == 10 and "lock timeout" in batch.error
    assert {f.position for f in run.failure_set.all()} == set(range(10, 20))
    titles = dict(Product.objects.values_list("upc", "title"))
    assert all(titles[f"L{i:02d}"].endswith(" v2") == (not 10 <= i < 20) for i in range(30))

    again = sync_run_execute(renamed, batch_size=10)
    assert (again.updated, again.unchanged, again.failed) == (10, 20, 0)


def holding_write_lock(locked: threading.Event, release: threading.Event) -> None:
    """Another process writing to SQLite: it holds the database's one write lock."""
    try:
        with transaction.atomic():
            Product.objects.filter(upc="nothing").update(title="x")
            locked.set()
            release.wait(timeout=60)
    finally:
        connections.close_all()


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="PostgreSQL locks rows, not the database: see the row lock test",
)
@pytest.mark.django_db(transaction=True)
def test_sqlite_write_lock_ends_the_run_after_the_busy_timeout(write_feed, settings):
    settings.PRODUCTSYNC = {**settings.PRODUCTSYNC, "LOCK_TIMEOUT": 1, "STALE_AFTER": 1}
    feed = write_feed([product(f"W{i:02d}") for i in range(20)])
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=holding_write_lock, args=(locked, release))

    def lock_now(run):
        holder.start()
        assert locked.wait(timeout=30)

    try:
        with pytest.raises(ProductSyncError, match="database is locked"):
            sync_run_execute(feed, batch_size=10, on_start=lock_now)
    finally:
        release.set()
        holder.join()
    assert Product.objects.count() == 0
    run = SyncRun.objects.get()
    wait_until_stale(run, 1)
    again = sync_run_execute(feed, batch_size=10)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.ABORTED
    assert (again.status, again.created) == (SyncRun.Status.SUCCEEDED, 20)


@pytest.mark.django_db
def test_read_only_database_is_one_clear_line(write_feed):
    feed = write_feed([product("R1")])
    if connection.vendor == "sqlite":
        env = {**FAULT_SETTINGS, "SQLITE_READ_ONLY": "1"}
    else:
        options = {"options": "-c default_transaction_read_only=on"}
        env = {**FAULT_SETTINGS, "DATABASE_OPTIONS": json.dumps(options)}
    result = run_command("sync_products", "--source", feed, env=env)
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "read-only" in lines[0].replace("readonly", "read-only")
    assert not SyncRun.objects.exists() and not Product.objects.exists()


@pytest.mark.django_db
def test_run_taken_for_dead_stops_and_undoes_its_batch(write_feed):
    feed = write_feed([product(f"S{i}") for i in range(30)])

    def swept_after_first_batch(run, result):
        # Another process's sweep finds this run's heartbeat old and gives its lease away.
        if result.number == 1:
            SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now().replace(year=2000))
            assert sync_run_abort_stale() == 1

    with pytest.raises(LeaseLostError, match="undone"):
        sync_run_execute(feed, batch_size=10, on_batch=swept_after_first_batch)
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.ABORTED and run.batches == 1
    assert Product.objects.count() == 10
    assert_whole_batches()


@pytest.mark.django_db
def test_unexpected_error_ends_the_run_and_releases_the_lease(write_feed):
    feed = write_feed([product("X1")])

    def broken_progress(run, result):
        raise BrokenPipeError("the terminal went away")

    with pytest.raises(BrokenPipeError):
        sync_run_execute(feed, on_batch=broken_progress)
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.FAILED and "the terminal went away" in run.error
    assert sync_run_execute(feed).status == SyncRun.Status.SUCCEEDED  # the lease is free
